import { ExecutionContext, ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { resolvePoolOptions } from '../../src/container-pool/config';
import {
  ADMIN_IDENTITY,
  AdminTokenGuard,
  checkBearer,
  MetricsAccessGuard,
  tokenFingerprint,
} from '../../src/container-pool/http/guards/admin-token.guard';

const A = 'token-a-0123456789abcdef';
const B = 'token-b-0123456789abcdef';

function context(authorization?: string) {
  const req: Record<string, any> = {
    headers: { authorization },
    method: 'GET',
    url: '/admin/pool',
  };
  const headers: Record<string, string> = {};
  const res = { setHeader: (k: string, v: string) => (headers[k] = v) };
  const ctx = {
    switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
  } as unknown as ExecutionContext;
  return { ctx, req, headers };
}

const guard = (adminToken: string[], metricsPublic = false, Guard = AdminTokenGuard) =>
  new Guard({ ...resolvePoolOptions(), adminToken, metricsPublic });

describe('checkBearer', () => {
  it('accepts any configured token (rotation) and names it by fingerprint', () => {
    expect(checkBearer(`Bearer ${A}`, [A, B])).toEqual({
      ok: true,
      fingerprint: tokenFingerprint(A),
    });
    expect(checkBearer(`Bearer ${B}`, [A, B])).toEqual({
      ok: true,
      fingerprint: tokenFingerprint(B),
    });
    expect(checkBearer(`bearer  ${B} `, [A, B])).toMatchObject({ ok: true });
    expect(tokenFingerprint(A)).toMatch(/^[0-9a-f]{8}$/);
    expect(tokenFingerprint(A)).not.toBe(tokenFingerprint(B));
  });

  it('tells missing, malformed, invalid and disabled apart', () => {
    expect(checkBearer(undefined, [A])).toEqual({ ok: false, reason: 'missing' });
    expect(checkBearer('', [A])).toEqual({ ok: false, reason: 'missing' });
    expect(checkBearer(A, [A])).toEqual({ ok: false, reason: 'malformed' });
    expect(checkBearer(`Basic ${A}`, [A])).toEqual({ ok: false, reason: 'malformed' });
    expect(checkBearer(`Bearer ${A} ${A}`, [A])).toEqual({ ok: false, reason: 'malformed' });
    expect(checkBearer([`Bearer ${A}`], [A])).toEqual({ ok: false, reason: 'malformed' });
    expect(checkBearer(`Bearer ${A}x`, [A])).toEqual({ ok: false, reason: 'invalid' });
    expect(checkBearer(`Bearer ${A.slice(0, -1)}`, [A])).toEqual({ ok: false, reason: 'invalid' });
    expect(checkBearer(`Bearer ${A}`, [])).toEqual({ ok: false, reason: 'disabled' });
  });

  it('compares equal-length SHA-256 digests with timingSafeEqual, every token, whatever matches', () => {
    // The module object itself (what the guard calls through), not an import wrapper.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeCrypto = require('node:crypto') as typeof import('node:crypto');
    const spy = jest.spyOn(nodeCrypto, 'timingSafeEqual');
    try {
      checkBearer(`Bearer ${A}`, [A, B, 'token-c-0123456789abcdef']);
      expect(spy).toHaveBeenCalledTimes(3);
      for (const [x, y] of spy.mock.calls) {
        expect((x as Buffer).length).toBe(32);
        expect((y as Buffer).length).toBe(32);
      }
      spy.mockClear();
      checkBearer('Bearer short', [A, B]);
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('AdminTokenGuard', () => {
  it('lets a right token through and leaves the identity (never the token) on the request', () => {
    const { ctx, req } = context(`Bearer ${B}`);
    expect(guard([A, B]).canActivate(ctx)).toBe(true);
    expect(req[ADMIN_IDENTITY]).toEqual({ tokenFingerprint: tokenFingerprint(B), scope: 'admin' });
    expect(JSON.stringify(req[ADMIN_IDENTITY])).not.toContain(B);
  });

  it('answers 401 with WWW-Authenticate for a missing or wrong token', () => {
    const missing = context();
    expect(() => guard([A]).canActivate(missing.ctx)).toThrow(UnauthorizedException);
    expect(missing.headers['WWW-Authenticate']).toBe('Bearer realm="container-pool"');
    const wrong = context(`Bearer ${B}`);
    expect(() => guard([A]).canActivate(wrong.ctx)).toThrow('Invalid bearer token.');
    expect(wrong.headers['WWW-Authenticate']).toMatch(/error="invalid_token"/);
  });

  it('answers 403 saying how to enable the API when no token is configured', () => {
    const { ctx } = context(`Bearer ${A}`);
    expect(() => guard([]).canActivate(ctx)).toThrow(ForbiddenException);
    expect(() => guard([]).canActivate(ctx)).toThrow(/Set POOL_ADMIN_TOKEN/);
  });
});

describe('MetricsAccessGuard', () => {
  it('is open when metricsPublic, else guarded like the admin API', () => {
    expect(guard([], true, MetricsAccessGuard).canActivate(context().ctx)).toBe(true);
    expect(() => guard([A], false, MetricsAccessGuard).canActivate(context().ctx)).toThrow(
      UnauthorizedException,
    );
    expect(() => guard([], false, MetricsAccessGuard).canActivate(context().ctx)).toThrow(
      /POOL_METRICS_PUBLIC/,
    );
    expect(guard([A], false, MetricsAccessGuard).canActivate(context(`Bearer ${A}`).ctx)).toBe(
      true,
    );
  });
});
