/*
 * The settings of rich outputs and pre-imports (issue #18): maxOutputs, preloadModules, their environment form and
 * errors naming them; the runner's command line and its generation with preloadModules.
 */
import { generationOf, readPoolEnv, resolvePoolOptions } from '../../src/container-pool/config';
import type { ContainerDriver } from '../../src/container-pool/engine/container-driver.interface';
import {
  InvalidPoolConfigError,
  SandboxUnsupportedError,
} from '../../src/container-pool/errors/container-pool.errors';
import { ProfileTransport } from '../../src/container-pool/transport/profile-transport';
import { RunnerStartError } from '../../src/container-pool/transport/runner/runner-connection';
import {
  runnerCommand,
  RunnerTransport,
} from '../../src/container-pool/transport/runner/runner.transport';

function problemsOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPoolConfigError);
    return (err as Error).message;
  }
  throw new Error('expected InvalidPoolConfigError');
}

const quiet = { log: () => undefined, warn: () => undefined, debug: () => undefined };

describe('maxOutputs and preloadModules settings', () => {
  it('default to 32 outputs and no pre-imports', () => {
    expect(resolvePoolOptions()).toMatchObject({ maxOutputs: 32, preloadModules: [] });
  });

  it('read POOL_MAX_OUTPUTS and POOL_PRELOAD_MODULES (comma or space separated), per profile too', () => {
    const env = readPoolEnv({
      POOL_MAX_OUTPUTS: '0',
      POOL_PRELOAD_MODULES: 'numpy, pandas matplotlib,matplotlib.pyplot',
      POOL_PROFILES: 'ds,plain',
      POOL_PROFILE__DS__MAX_OUTPUTS: '64',
    });
    expect(env.problems).toEqual([]);
    const o = resolvePoolOptions({ defaultProfile: 'ds' }, env);
    const ds = o.profiles.find((p) => p.profile === 'ds')!;
    const plain = o.profiles.find((p) => p.profile === 'plain')!;
    expect(ds).toMatchObject({
      maxOutputs: 64,
      preloadModules: ['numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot'],
    });
    expect(plain.maxOutputs).toBe(0);
  });

  it.each([
    [{ maxOutputs: -1 }, /maxOutputs \(POOL_MAX_OUTPUTS\) must be at least 0, got -1/],
    [{ maxOutputs: 1025 }, /maxOutputs \(POOL_MAX_OUTPUTS\) must be at most 1024, got 1025/],
    [{ maxOutputs: 1.5 }, /maxOutputs \(POOL_MAX_OUTPUTS\) must be an integer/],
    [{ preloadModules: 'numpy' as unknown as string[] }, null],
    [
      { preloadModules: [1] as unknown as string[] },
      /preloadModules \(POOL_PRELOAD_MODULES\) must be a list/,
    ],
    [
      { preloadModules: ['os; import x'] },
      /preloadModules \(POOL_PRELOAD_MODULES\) must be Python module names/,
    ],
    [{ preloadModules: ['a..b'] }, /must be Python module names.*"a\.\.b"/],
    [{ preloadModules: ['9lives'] }, /must be Python module names/],
    [{ preloadModules: ['.numpy'] }, /must be Python module names/],
    [{ preloadModules: ['a'.repeat(129)] }, /at most 128 characters/],
    [
      { preloadModules: Array.from({ length: 33 }, (_, i) => `m${i}`) },
      /at most 32 modules, got 33/,
    ],
  ])('checks %j', (options, message) => {
    if (message === null) {
      // A string in code is read as the environment reads it.
      expect(resolvePoolOptions(options).preloadModules).toEqual(['numpy']);
      return;
    }
    expect(problemsOf(() => resolvePoolOptions(options))).toMatch(message);
  });

  it('accepts 32 names of 128 characters, and maxOutputs 0 and 1024', () => {
    const names = Array.from({ length: 32 }, (_, i) => `m${i}.`.padEnd(128, 'x'));
    expect(resolvePoolOptions({ preloadModules: names, maxOutputs: 1024 }).preloadModules).toEqual(
      names,
    );
    expect(resolvePoolOptions({ maxOutputs: 0 }).maxOutputs).toBe(0);
  });

  it('preloadModules with the exec transport is a configuration error naming it', () => {
    expect(
      problemsOf(() => resolvePoolOptions({ transport: 'exec', preloadModules: ['numpy'] })),
    ).toMatch(/preloadModules \(POOL_PRELOAD_MODULES\) needs the runner transport/);
    expect(
      problemsOf(() =>
        resolvePoolOptions({
          defaultProfile: 'a',
          profiles: { a: {}, b: { transport: 'exec', preloadModules: ['numpy'] } },
        }),
      ),
    ).toMatch(/profiles\.b\.preloadModules .* needs the runner transport/);
    expect(resolvePoolOptions({ transport: 'exec' }).preloadModules).toEqual([]);
  });
});

describe('the runner with preloadModules', () => {
  it('gets the start options as a fourth argument only when there are modules', () => {
    const deadline = new Date(1_700_000_000_000);
    const plain = runnerCommand(['python3'], deadline);
    expect(plain.slice(-2)).toEqual(['1700000000', '3']);
    const preload = runnerCommand(['python3'], deadline, ['numpy', 'matplotlib.pyplot']);
    expect(preload).toHaveLength(plain.length + 1);
    expect(JSON.parse(preload.at(-1)!)).toEqual({ preload: ['numpy', 'matplotlib.pyplot'] });
    expect(runnerCommand(['python3'], deadline, [])).toEqual(plain);
  });

  it('another list is another generation (the containers roll); none keeps the generation as it was', () => {
    const runner = (preloadModules?: string[]) =>
      new RunnerTransport({} as ContainerDriver, {
        pythonCommand: ['python3'],
        user: '65534:65534',
        baseEnv: [],
        preloadModules,
        log: quiet,
      });
    const o = resolvePoolOptions();
    const gen = (t: RunnerTransport) => generationOf(o, 'sha256:1', t.identity);
    expect(runner([]).identity).toBe(runner().identity);
    expect(gen(runner(['numpy']))).not.toBe(gen(runner()));
    expect(gen(runner(['numpy']))).not.toBe(gen(runner(['numpy', 'pandas'])));
    expect(gen(runner(['numpy']))).toBe(gen(runner(['numpy'])));
    expect(
      runner(['numpy'])
        .mainProcess(new Date(Date.now() + 60_000))
        .command.at(-1),
    ).toBe('{"preload":["numpy"]}');
  });

  it('auto does not fall back to exec when preloadModules asks for the runner: the preparation fails', async () => {
    const transport = new ProfileTransport({ channels: true } as ContainerDriver, {
      transport: 'auto',
      image: 'busybox',
      pythonCommand: ['python3'],
      preloadModules: ['numpy'],
      user: '65534:65534',
      baseEnv: [],
      log: quiet,
    });
    const choice = transport.choose('sha256:nopython-preload', () =>
      Promise.reject(new RunnerStartError('python3: not found', true)),
    );
    await expect(choice).rejects.toBeInstanceOf(SandboxUnsupportedError);
    await expect(choice).rejects.toThrow(
      /preloadModules \(POOL_PRELOAD_MODULES\) needs the runner/,
    );
  });
});
