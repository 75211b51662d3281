import { readPoolEnv, resolvePoolOptions } from '../../src/container-pool/config';
import { InvalidPoolConfigError } from '../../src/container-pool/errors/container-pool.errors';

const T1 = 'first-token-0123456789';
const T2 = 'second-token-0123456789';

describe('admin API settings', () => {
  it('reads POOL_ADMIN_TOKEN as a comma separated list, POOL_METRICS_PUBLIC and POOL_MAX_BODY_BYTES', () => {
    const env = readPoolEnv({
      POOL_ADMIN_TOKEN: ` ${T1}, ${T2} ,`,
      POOL_METRICS_PUBLIC: 'true',
      POOL_MAX_BODY_BYTES: '8MiB',
    });
    expect(env.problems).toEqual([]);
    const o = resolvePoolOptions({}, env);
    expect(o.adminToken).toEqual([T1, T2]);
    expect(o.metricsPublic).toBe(true);
    expect(o.maxBodyBytes).toBe(8 * 1024 * 1024);
  });

  it('defaults: no token (admin API answers 403), metrics guarded, 24 MiB bodies', () => {
    const o = resolvePoolOptions({});
    expect(o.adminToken).toEqual([]);
    expect(o.metricsPublic).toBe(false);
    expect(o.maxBodyBytes).toBe(24 * 1024 * 1024);
  });

  it('takes the option as a string (comma separated) or a list; explicit wins over the environment', () => {
    expect(resolvePoolOptions({ adminToken: `${T1},${T2}` }).adminToken).toEqual([T1, T2]);
    expect(resolvePoolOptions({ adminToken: [T2] }).adminToken).toEqual([T2]);
    const env = readPoolEnv({ POOL_ADMIN_TOKEN: T1 });
    expect(resolvePoolOptions({ adminToken: [] }, env).adminToken).toEqual([]);
  });

  it('refuses short or spaced tokens without echoing them', () => {
    for (const bad of ['short', 'has a space in it 0123456789']) {
      let error: unknown;
      try {
        resolvePoolOptions({ adminToken: [T1, bad] });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InvalidPoolConfigError);
      expect((error as Error).message).toMatch(
        /adminToken \(POOL_ADMIN_TOKEN\).*at least 16 characters/,
      );
      expect((error as Error).message).not.toContain(bad);
      expect((error as Error).message).not.toContain(T1);
    }
    expect(() => resolvePoolOptions({ maxBodyBytes: 10 })).toThrow(/maxBodyBytes.*at least 1024/);
  });
});
