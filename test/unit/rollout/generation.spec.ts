import { generationOf, readPoolEnv, resolvePoolOptions } from '../../../src/container-pool/config';

describe('generationOf', () => {
  const base = resolvePoolOptions({ image: 'img:1' });
  const gen = (over: object, imageId = 'sha256:a', transport = 'exec') =>
    generationOf({ ...base, ...over }, imageId, transport);

  it('is a 16-hex hash, stable for the same inputs', () => {
    expect(gen({})).toMatch(/^[0-9a-f]{16}$/);
    expect(gen({})).toBe(gen({}));
  });

  it('changes with the image id, the transport and every field that reaches the create', () => {
    const g = gen({});
    expect(gen({}, 'sha256:b')).not.toBe(g);
    expect(gen({}, 'sha256:a', 'runner:1')).not.toBe(g);
    for (const over of [
      { user: '1000:1000' },
      { workdir: '/w' },
      { memoryBytes: base.memoryBytes * 2 },
      { nanoCpus: 2e9 },
      { pidsLimit: 64 },
      { nofileLimit: 512 },
      { fileSizeLimitBytes: 1024 },
      { tmpSizeBytes: 1024 },
      { workdirSizeBytes: 1024 },
      { shmSizeBytes: 1024 },
      { runtime: 'runsc' },
      { seccompProfile: '{}' },
      { containerLifetimeMs: base.containerLifetimeMs + 1 },
    ]) {
      expect([over, gen(over)]).not.toEqual([over, g]);
    }
  });

  it('ignores the image name (the id decides), size, caps and timeouts', () => {
    const g = gen({});
    for (const over of [
      { image: 'other:tag' },
      { size: 7 },
      { maxContainers: 99 },
      { acquireTimeoutMs: 1 },
      { execTimeoutMs: 1 },
      { maxOutputBytes: 1 },
    ]) {
      expect([over, gen(over)]).toEqual([over, g]);
    }
  });
});

describe('rollout settings', () => {
  it('default to onReplenish, a surge of 1 and a 10-minute deadline, read from the environment too', () => {
    expect(resolvePoolOptions()).toMatchObject({
      updateStrategy: 'onReplenish',
      maxSurge: 1,
      progressDeadlineMs: 600_000,
    });
    const env = readPoolEnv({
      POOL_UPDATE_STRATEGY: 'rolling',
      POOL_MAX_SURGE: '3',
      POOL_PROGRESS_DEADLINE_MS: '5000',
    });
    expect(resolvePoolOptions({}, env)).toMatchObject({
      updateStrategy: 'rolling',
      maxSurge: 3,
      progressDeadlineMs: 5000,
    });
  });

  it('refuse an unknown strategy and a surge below 1, naming the setting', () => {
    const run = () => resolvePoolOptions({ updateStrategy: 'bluegreen' as never, maxSurge: 0 });
    expect(run).toThrow(
      /updateStrategy \(POOL_UPDATE_STRATEGY\) must be one of recreate, onReplenish, rolling/,
    );
    expect(run).toThrow(/maxSurge \(POOL_MAX_SURGE\) must be at least 1/);
  });
});
