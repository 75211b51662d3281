/*
 * A request refused before its handler (a guard's 401/403, a body's 400/413/415, the validation pipe's 400)
 * still writes the one audit or execution line a handled request writes, and only that one.
 */
import { INestApplication, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { tokenFingerprint } from '../../src/container-pool/http/guards/admin-token.guard';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { FakeDriver } from '../support/fake-driver';

const ADMIN = 'unit-admin-token-0123456789';
const READ = 'unit-read-token-0123456789';
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
const fp = tokenFingerprint(ADMIN);

describe('audit of requests refused before the handler', () => {
  let app: INestApplication | undefined;
  const lines: string[] = [];
  let spies: jest.SpyInstance[] = [];
  beforeEach(() => {
    lines.length = 0;
    spies = (['log', 'warn'] as const).map((level) =>
      jest.spyOn(Logger.prototype, level).mockImplementation(function (
        this: Logger,
        ...args: unknown[]
      ) {
        const context = (this as unknown as { context?: string }).context ?? '';
        const m = args[0];
        // The lines of requests: the audit's, the executor's, the auth guard's and the error filter's.
        if (/^ContainerPool(Admin|Auth|Http)|^ContainerPool:/.test(context)) {
          lines.push(`${level} ${String(m)}`);
        }
      }),
    );
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    spies.forEach((s) => s.mockRestore());
  });

  async function start(options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {}) {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ContainerPoolModule.forRoot({
          image: 'fake:latest',
          size: 0,
          maxContainers: 2,
          replenishIntervalMs: 60_000,
          adminToken: ADMIN,
          readToken: READ,
          maxBodyBytes: 2048,
          http: true,
          ...options,
        }),
      ],
    })
      .overrideProvider(CONTAINER_DRIVER)
      .useValue(new FakeDriver())
      .compile();
    app = moduleRef.createNestApplication({ logger: false, bodyParser: false });
    await app.init();
    return () => request(app!.getHttpServer());
  }

  /** The lines written while `send` runs: the request's (startup lines are dropped before). */
  async function linesOf(send: () => Promise<request.Response>, status: number) {
    lines.length = 0;
    const res = await send();
    expect(res.status).toBe(status);
    return [...lines];
  }

  it('an audited route: a guard, a body or the pipe refusing is its one result=error line', async () => {
    const api = await start();
    const cases: [() => Promise<request.Response>, number, RegExp][] = [
      [
        () => api().post('/admin/pool/drain'),
        401,
        /^warn token=\? action=drain result=error UNAUTHORIZED: Missing bearer token: .* from=\S+ ms=\d+$/,
      ],
      [
        () =>
          api()
            .post('/admin/pool/drain')
            .set(bearer(`${ADMIN}x`)),
        401,
        /^warn token=\? action=drain result=error UNAUTHORIZED: Invalid bearer token\. from=\S+ ms=\d+$/,
      ],
      [
        () => api().post('/admin/pool/drain').set(bearer(READ)),
        403,
        new RegExp(
          `^warn token=${tokenFingerprint(READ)} action=drain result=error FORBIDDEN_SCOPE: This route needs ` +
            'a token of the admin scope .* from=\\S+ ms=\\d+$',
        ),
      ],
      [
        () =>
          api()
            .put('/admin/pool/size')
            .set(bearer(ADMIN))
            .set('Content-Type', 'text/plain')
            .send('4'),
        415,
        new RegExp(
          `^warn token=${fp} action=resize result=error UNSUPPORTED_MEDIA_TYPE: Request body must be JSON.* ms=\\d+$`,
        ),
      ],
      [
        () =>
          api()
            .put('/admin/pool/size')
            .set(bearer(ADMIN))
            .send({ size: 1, pad: 'x'.repeat(4096) }),
        413,
        new RegExp(
          `^warn token=${fp} action=resize result=error PAYLOAD_TOO_LARGE: .*maxBodyBytes`,
        ),
      ],
      [
        () =>
          api()
            .put('/admin/pool/size')
            .set(bearer(ADMIN))
            .set('Content-Type', 'application/json')
            .send('{"size":'),
        400,
        new RegExp(
          `^warn token=${fp} action=resize result=error INVALID_REQUEST: Request body is not valid JSON`,
        ),
      ],
      [
        () => api().put('/admin/pool/size').set(bearer(ADMIN)).send({ size: 'x' }),
        400,
        new RegExp(
          `^warn token=${fp} action=resize size=x result=error INVALID_REQUEST: size must`,
        ),
      ],
      [
        () => api().delete('/admin/pool/containers/..').set(bearer(ADMIN)),
        400,
        new RegExp(
          `^warn token=${fp} action=remove-container \\.\\. result=error INVALID_REQUEST: id must`,
        ),
      ],
    ];
    for (const [send, status, line] of cases) {
      expect(await linesOf(send, status)).toEqual([expect.stringMatching(line)]);
    }
    // A profile's copy of the route: the line names the profile, as a handled call's does.
    expect(await linesOf(() => api().post('/admin/pool/profiles/default/drain'), 401)).toEqual([
      expect.stringMatching(
        /^warn token=\? profile=default action=drain result=error UNAUTHORIZED: /,
      ),
    ]);
    // Handled: the interceptor's line, once.
    expect(await linesOf(() => api().post('/admin/pool/drain').set(bearer(ADMIN)), 200)).toEqual([
      expect.stringMatching(
        new RegExp(`^log token=${fp} action=drain result=ok idle=0 .* ms=\\d+$`),
      ),
    ]);
  });

  it('executions: every refusal is one exec refused line; a run is the executor line alone', async () => {
    const api = await start();
    const exec = () => api().post('/admin/pool/executions');
    const cases: [() => Promise<request.Response>, number, RegExp][] = [
      [
        () => exec().send({ cmd: ['true'] }),
        401,
        /^warn exec refused token=\? code=0B from=\S+: UNAUTHORIZED: Missing bearer token/,
      ],
      [
        () =>
          exec()
            .set(bearer(READ))
            .send({ cmd: ['true'] }),
        403,
        new RegExp(
          `^warn exec refused token=${tokenFingerprint(READ)} cmd="true" from=\\S+: FORBIDDEN_SCOPE: `,
        ),
      ],
      [
        () =>
          exec()
            .set(bearer(ADMIN))
            .send({ cmd: ['sh'], stdin: 'x'.repeat(4096) }),
        413,
        new RegExp(`^warn exec refused token=${fp} code=0B: PAYLOAD_TOO_LARGE: `),
      ],
      [
        () => exec().set(bearer(ADMIN)).set('Content-Type', 'text/plain').send('print(1)'),
        415,
        new RegExp(`^warn exec refused token=${fp} code=0B: UNSUPPORTED_MEDIA_TYPE: `),
      ],
      [
        () =>
          exec()
            .set(bearer(ADMIN))
            .send({ cmd: ['true'], extra: 1 }),
        400,
        new RegExp(
          `^warn exec refused token=${fp} cmd="true": INVALID_REQUEST: property extra should not exist`,
        ),
      ],
      [
        () => exec().set(bearer(ADMIN)).send([1]),
        400,
        new RegExp(
          `^warn exec refused token=${fp} code=0B: INVALID_REQUEST: Request body must be a JSON object`,
        ),
      ],
      [
        () =>
          exec()
            .set(bearer(ADMIN))
            .send({ cmd: ['true'], timeoutMs: 10_000_000 }),
        400,
        new RegExp(`^warn exec refused token=${fp} cmd="true": INVALID_REQUEST: timeoutMs`),
      ],
    ];
    for (const [send, status, line] of cases) {
      expect(await linesOf(send, status)).toEqual([expect.stringMatching(line)]);
    }
    expect(
      await linesOf(
        () =>
          exec()
            .set(bearer(READ))
            .send({ cmd: ['true'], profile: 'default' }),
        403,
      ),
    ).toEqual([
      expect.stringMatching(
        new RegExp(
          `^warn exec refused token=${tokenFingerprint(READ)} profile=default cmd="true" from=\\S+: FORBIDDEN_SCOPE`,
        ),
      ),
    ]);
    const ran = await linesOf(
      () =>
        exec()
          .set(bearer(ADMIN))
          .send({ cmd: ['echo', 'hi'] }),
      200,
    );
    expect(ran).toEqual([
      expect.stringMatching(
        new RegExp(`^log exec \\S+ container=\\S+ exit=0 .* token=${fp} cmd="echo"$`),
      ),
    ]);
  });

  it('no token configured: the 403 is the audit line; a route without audit keeps the auth line', async () => {
    let api = await start({ adminToken: [], readToken: [] });
    expect(await linesOf(() => api().post('/admin/pool/drain').set(bearer(ADMIN)), 403)).toEqual([
      expect.stringMatching(
        /^warn token=\? action=drain result=error API_DISABLED: .* from=\S+ ms=\d+$/,
      ),
    ]);
    await app!.close();
    api = await start();
    expect(await linesOf(() => api().get('/admin/pool'), 401)).toEqual([
      expect.stringMatching(/^warn rejected GET \/admin\/pool from \S+: missing bearer token$/),
    ]);
  });
});
