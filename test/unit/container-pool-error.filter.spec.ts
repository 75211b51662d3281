import { BadRequestException, HttpStatus, NotFoundException } from '@nestjs/common';
import {
  AcquireTimeoutError,
  ContainerCreateError,
  ContainerExpiredError,
  ContainerLostError,
  ContainerPoolError,
  ContainerReleasedError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  InvalidPoolConfigError,
  InvalidRequestError,
  PoolDrainedError,
  PoolShuttingDownError,
  SandboxUnsupportedError,
  TooManyWaitersError,
} from '../../src/container-pool/errors/container-pool.errors';
import {
  ContainerPoolErrorFilter,
  errorResponseOf,
  httpMappingOf,
} from '../../src/container-pool/http/filters/container-pool-error.filter';

describe('pool errors to HTTP', () => {
  it.each<[ContainerPoolError, number, number | undefined]>([
    [new InvalidRequestError('timeoutMs', 'too big'), 400, undefined],
    [new AcquireTimeoutError(100), 503, 1],
    [new TooManyWaitersError(5), 503, 1],
    [new PoolDrainedError(), 503, 30],
    [new EngineUnavailableError('ECONNREFUSED'), 503, 5],
    [new ContainerCreateError('boom'), 503, 5],
    [new ImageUnavailableError('x:1', 'missing'), 503, 30],
    [new SandboxUnsupportedError('no seccomp'), 503, undefined],
    [new PoolShuttingDownError(), 503, undefined],
    [new ContainerExpiredError('c', 10, 20), 503, 1],
    [new ContainerLostError('c', 'it exited'), 502, undefined],
    [new ExecutionAbortedError('The execution'), 499, undefined],
    [new ContainerReleasedError('c'), 500, undefined],
    [new InvalidPoolConfigError(['x']), 500, undefined],
  ])('%s -> %i (Retry-After %s)', (err, status, retryAfter) => {
    expect(httpMappingOf(err)).toEqual(
      retryAfter === undefined ? { status } : { status, retryAfterSeconds: retryAfter },
    );
    const r = errorResponseOf(err);
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ statusCode: status, message: err.message, code: err.code });
    expect(r.headers['Retry-After']).toBe(
      retryAfter === undefined ? undefined : String(retryAfter),
    );
  });

  it('names the field of an invalid request', () => {
    expect(errorResponseOf(new InvalidRequestError('env.A', 'bad')).body).toMatchObject({
      field: 'env.A',
      error: 'Bad Request',
      code: 'INVALID_REQUEST',
    });
  });

  it('gives HttpExceptions the one shape, with a code of their status', () => {
    const r = errorResponseOf(new BadRequestException(['size must not be less than 0', 'other']));
    expect(r).toEqual({
      status: 400,
      headers: {},
      body: {
        statusCode: 400,
        error: 'Bad Request',
        code: 'INVALID_REQUEST',
        message: 'size must not be less than 0',
        retryable: false,
        details: [{ message: 'size must not be less than 0' }, { message: 'other' }],
      },
    });
    expect(errorResponseOf(new NotFoundException('No container "x"')).body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      code: 'NOT_FOUND',
      message: 'No container "x"',
      retryable: false,
    });
  });

  it('answers unknown errors with a generic 500: no message, no stack', () => {
    const err = new TypeError('secret internal detail at /srv/app.js:12');
    const r = errorResponseOf(err);
    expect(r.status).toBe(HttpStatus.INTERNAL_SERVER_ERROR);
    const text = JSON.stringify(r.body);
    expect(text).not.toContain('secret');
    expect(text).not.toContain('stack');
    expect(r.body.message).toMatch(/server log/);
  });

  it('writes through the HTTP adapter, with Retry-After, and skips a response already gone', () => {
    const calls: unknown[][] = [];
    const adapter = {
      setHeader: (...a: unknown[]) => calls.push(['setHeader', ...a]),
      reply: (...a: unknown[]) => calls.push(['reply', ...a]),
    };
    const filter = new ContainerPoolErrorFilter({ httpAdapter: adapter } as any);
    const res = { headersSent: false };
    const host = {
      switchToHttp: () => ({
        getResponse: () => res,
        getRequest: () => ({ method: 'POST', url: '/x' }),
      }),
    } as any;
    filter.catch(new TooManyWaitersError(1), host);
    expect(calls[0]).toEqual(['setHeader', res, 'Retry-After', '1']);
    expect(calls[1][0]).toBe('reply');
    expect(calls[1][3]).toBe(503);
    calls.length = 0;
    filter.catch(new TooManyWaitersError(1), {
      switchToHttp: () => ({ getResponse: () => ({ destroyed: true }), getRequest: () => ({}) }),
    } as any);
    expect(calls).toEqual([]);
  });
});
