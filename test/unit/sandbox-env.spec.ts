import {
  sandboxEnv,
  toCreateOptions,
} from '../../src/container-pool/engine/docker/docker-create-options';

describe('sandboxEnv (the container environment)', () => {
  it('keeps the given entries and unsets the image ENV and HOSTNAME by naming them without a value', () => {
    const env = sandboxEnv(
      ['PATH=/usr/bin:/bin', 'HOME=/workspace'],
      [
        'PATH=/usr/local/bin:/usr/bin',
        'LANG=C.UTF-8',
        'GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D',
        'PYTHON_VERSION=3.13.1',
      ],
    );
    expect(env).toEqual([
      'PATH=/usr/bin:/bin',
      'HOME=/workspace',
      'LANG',
      'GPG_KEY',
      'PYTHON_VERSION',
      'HOSTNAME',
    ]);
  });

  it('is what toCreateOptions puts in Env', () => {
    const spec = { env: ['PATH=/bin', 'HOME=/w'] } as Parameters<typeof toCreateOptions>[0];
    expect(toCreateOptions({ ...spec, tmpfs: [] }, ['LANG=C.UTF-8']).Env).toEqual([
      'PATH=/bin',
      'HOME=/w',
      'LANG',
      'HOSTNAME',
    ]);
  });
});
