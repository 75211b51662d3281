import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import {
  ExecutionAbortedError,
  PoolShuttingDownError,
} from '../../../src/container-pool/errors/container-pool.errors';
import { onEngine } from '../../support/faults';
import { expectPoolHealthy, TRANSPORTS } from '../../support/hostile';
import {
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
  uniquePoolName,
} from '../../support/integration';

const TOKEN = `faults-${process.pid}-${Date.now()}`;

describe.each(TRANSPORTS)(
  'faults: callers that give up, and shutdown under load (transport %s)',
  (transport) => {
    describe('23. the caller aborts mid-execution', () => {
      let app: INestApplication;
      let pool: ContainerPoolService;
      let name: string;

      beforeAll(async () => {
        // maxContainers 1: a slot that is not freed would block the next run.
        ({ app, pool, name } = await startPool({
          name: uniquePoolName('abort'),
          size: 1,
          maxContainers: 1,
          acquireTimeoutMs: 10_000,
          adminToken: TOKEN,
          http: true,
          transport,
        }));
        await pool.initialize();
      });

      afterEach(async () => {
        await expectPoolHealthy(pool, name, transport);
      });

      afterAll(async () => {
        await app?.close();
        await expectNoContainersLeft(name);
      });

      it('AbortSignal: rejects at once, the container is killed and the slot freed', async () => {
        const ac = new AbortController();
        const running = pool.run({ cmd: ['sleep', '30'], signal: ac.signal }).then(
          () => null,
          (e: unknown) => e,
        );
        await eventually(() => pool.stats().leased === 1, 10_000, 'the execution to start');
        const leasedId = pool.containers().find((c) => c.state === 'leased')!.id;
        await new Promise((r) => setTimeout(r, 300));
        const t0 = Date.now();
        ac.abort(new Error('the user pressed stop'));
        const err = await running;
        expect(err).toBeInstanceOf(ExecutionAbortedError);
        expect(Date.now() - t0).toBeLessThan(2_500);
        await eventually(async () => !(await onEngine(leasedId)), 5_000, 'the container removed');
        expect(pool.stats().leased).toBe(0);
      });

      it('AbortSignal while waiting for a container: the waiter leaves the queue', async () => {
        const holder = await pool.acquire();
        const ac = new AbortController();
        const waiting = pool.run({ cmd: ['true'], signal: ac.signal }).then(
          () => null,
          (e: unknown) => e,
        );
        await eventually(() => pool.stats().waiting === 1, 5_000, 'the waiter queued');
        ac.abort();
        expect(await waiting).toBeInstanceOf(ExecutionAbortedError);
        expect(pool.stats().waiting).toBe(0);
        pool.release(holder);
      });

      it('HTTP: the client disconnecting from POST /admin/pool/executions kills the container and frees the slot', async () => {
        const server = app.getHttpServer() as http.Server;
        if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const { port } = server.address() as AddressInfo;
        const body = JSON.stringify({
          code: 'import time\nprint("working", flush=True)\ntime.sleep(30)',
        });
        const req = http.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/admin/pool/executions',
          headers: {
            Authorization: `Bearer ${TOKEN}`,
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
          },
        });
        req.on('error', () => undefined);
        req.end(body);
        await eventually(() => pool.stats().leased === 1, 10_000, 'the execution to start');
        const leasedId = pool.containers().find((c) => c.state === 'leased')!.id;
        await new Promise((r) => setTimeout(r, 300));
        const executions = pool.stats().totals.executions;
        req.destroy();
        await eventually(() => pool.stats().leased === 0, 5_000, 'the lease to end');
        await eventually(async () => !(await onEngine(leasedId)), 5_000, 'the container removed');
        // Aborted, not counted as a finished execution.
        expect(pool.stats().totals.executions).toBe(executions);
        server.close();
      });
    });

    describe('25. shutdown with waiters and running executions', () => {
      it('waiters rejected with the typed error, executions stopped, every container removed, twice is safe', async () => {
        const name = uniquePoolName('shutdown');
        const { app, pool } = await startPool({
          name,
          size: 2,
          maxContainers: 2,
          shutdownGraceMs: 1_000,
          acquireTimeoutMs: 30_000,
          transport,
        });
        await pool.initialize();
        const settle = (p: Promise<unknown>) =>
          p.then(
            (v) => ({ ok: true as const, v, at: Date.now() }),
            (e: unknown) => ({ ok: false as const, e, at: Date.now() }),
          );
        const runs = [
          settle(pool.run({ cmd: ['sleep', '30'] })),
          settle(pool.run({ code: 'import time\ntime.sleep(30)' })),
        ];
        await eventually(() => pool.stats().leased === 2, 10_000, 'two executions running');
        const waiters = [
          settle(pool.acquire()),
          settle(pool.run({ cmd: ['true'] })),
          settle(pool.acquire()),
        ];
        await eventually(() => pool.stats().waiting === 3, 5_000, 'three waiters');
        const ids = pool.containers().map((c) => c.id);
        expect(ids).toHaveLength(2);

        const t0 = Date.now();
        const first = pool.shutdown();
        const second = app.close(); // the app's shutdown hook calls shutdown() again
        const third = pool.shutdown();
        expect(third).toBe(first);

        for (const w of await Promise.all(waiters)) {
          expect(w.ok).toBe(false);
          if (!w.ok) expect(w.e).toBeInstanceOf(PoolShuttingDownError);
          expect(w.at - t0).toBeLessThan(1_000);
        }
        for (const r of await Promise.all(runs)) {
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.e).toBeInstanceOf(PoolShuttingDownError);
          // Stopped after the grace period, not left to run their 30 s.
          expect(r.at - t0).toBeGreaterThanOrEqual(900);
          expect(r.at - t0).toBeLessThan(5_000);
        }
        await Promise.all([first, second, third]);
        expect(await engineContainers(name)).toEqual([]);
        for (const id of ids) expect(await onEngine(id)).toBe(false);
        expect(pool.stats()).toMatchObject({
          idle: 0,
          leased: 0,
          creating: 0,
          destroying: 0,
          waiting: 0,
        });
        await expect(pool.acquire()).rejects.toBeInstanceOf(PoolShuttingDownError);
        await expect(pool.shutdown()).resolves.toBeUndefined();
        await expectNoContainersLeft(name);

        // The engine and the name are clean: a new instance of the pool serves at once.
        const next = await startPool({ name, size: 1, transport });
        await next.pool.initialize();
        await expectPoolHealthy(next.pool, name, transport);
        await next.app.close();
        await expectNoContainersLeft(name);
      }, 60_000);
    });
  },
);
