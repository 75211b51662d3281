import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import { ContainerLostError } from '../../../src/container-pool/errors/container-pool.errors';
import { activeResources, onEngine } from '../../support/faults';
import { expectPoolHealthy, TRANSPORTS } from '../../support/hostile';
import { docker, eventually, expectNoContainersLeft, startPool } from '../../support/integration';

/** Containers that die or vanish behind the pool's back, and executions whose output never ends. */
describe.each(TRANSPORTS)(
  'faults: containers killed or removed outside the pool; endless streams (transport %s)',
  (transport) => {
    let app: INestApplication;
    let pool: ContainerPoolService;
    let name: string;

    beforeAll(async () => {
      ({ app, pool, name } = await startPool({
        size: 2,
        maxContainers: 4,
        memoryBytes: 128 * 1024 * 1024,
        tmpSizeBytes: 16 * 1024 * 1024,
        workdirSizeBytes: 16 * 1024 * 1024,
        shmSizeBytes: 8 * 1024 * 1024,
        execTimeoutMs: 10_000,
        maxExecTimeoutMs: 20_000,
        replenishIntervalMs: 500,
        containerLifetimeMs: 120_000,
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

    const idleIds = () =>
      pool
        .containers()
        .filter((c) => c.state === 'idle')
        .map((c) => c.id);

    async function fullPool(): Promise<void> {
      await eventually(() => pool.stats().idle === 2, 20_000, 'two idle containers');
    }

    describe('18. killed or removed outside the pool', () => {
      for (const how of ['kill', 'remove'] as const) {
        it(`idle container ${how === 'kill' ? 'killed' : 'removed'}: never handed out, the pool refills`, async () => {
          await fullPool();
          const [victim] = idleIds();
          const target = docker.getContainer(victim);
          if (how === 'kill') await target.kill();
          else await target.remove({ force: true });
          // Hand out everything the pool has, right away and while it refills: never the victim.
          const handed: string[] = [];
          for (let i = 0; i < 4; i++) {
            const c = await pool.acquire();
            handed.push(c.id);
            const r = await c.execute(['echo', 'alive']);
            expect(r).toMatchObject({ exitCode: 0, stdout: 'alive\n' });
            pool.release(c);
          }
          expect(handed).not.toContain(victim);
          await eventually(async () => !(await onEngine(victim)), 10_000, 'the victim gone');
          expect(pool.stats().totals.containersLost).toBeGreaterThanOrEqual(1);
          await fullPool();
        });

        it(`leased container ${how === 'kill' ? 'killed' : 'removed'} mid-execution: the caller gets an error naming it`, async () => {
          const c = await pool.acquire();
          try {
            // Handled from the start: the rejection may come before the engine's kill call returns.
            const outcome = c.execute(['sleep', '30']).then(
              () => null,
              (e: unknown) => e,
            );
            await new Promise((r) => setTimeout(r, 300));
            const target = docker.getContainer(c.id);
            if (how === 'kill') await target.kill();
            else await target.remove({ force: true });
            const t0 = Date.now();
            const err = await outcome;
            expect(err).toBeInstanceOf(ContainerLostError);
            expect((err as Error).message).toContain(c.name);
            expect(Date.now() - t0).toBeLessThan(3_000);
            // Using it again fails the same way, at once.
            await expect(c.execute(['true'])).rejects.toThrow(c.name);
          } finally {
            pool.release(c);
          }
        });

        it(`leased container ${how === 'kill' ? 'killed' : 'removed'} between executions: the next one fails naming it`, async () => {
          const c = await pool.acquire();
          try {
            const first = await c.execute(['echo', 'one']);
            expect(first.exitCode).toBe(0);
            const target = docker.getContainer(c.id);
            if (how === 'kill') await target.kill();
            else await target.remove({ force: true });
            const err = await c.execute(['echo', 'two']).then(
              () => null,
              (e: unknown) => e,
            );
            expect(err).toBeInstanceOf(ContainerLostError);
            expect((err as Error).message).toContain(c.name);
          } finally {
            pool.release(c);
          }
          // Never idle again; gone from the pool once its removal is through.
          expect(pool.containers().find((x) => x.id === c.id)?.state ?? 'gone').not.toBe('idle');
          await eventually(
            () => !pool.containers().some((x) => x.id === c.id),
            5_000,
            'the lost container to leave the pool',
          );
        });
      }
    });

    describe('22. an execution whose stream never ends', () => {
      it(`${transport === 'exec' ? 'the timer fires' : 'the job ends with its process'}, the container is removed; many runs leak no socket, listener or timer`, async () => {
        // Warm up: the engine client's sockets and the pool's timers exist before the count.
        await pool.run({ cmd: ['true'] });
        await fullPool();
        await new Promise((r) => setTimeout(r, 500));
        const before = activeResources();
        const timeoutsBefore = pool.stats().totals.timeouts;
        const listenersBefore = pool.events.eventNames().map((e) => pool.events.listenerCount(e));
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) {
          // `sleep` in the background keeps stdout open after sh exits: the stream never ends by itself.
          const r = await pool.run({
            cmd: ['sh', '-c', 'sleep 600 & echo forever'],
            timeoutMs: 300,
          });
          if (transport === 'exec') {
            // exec: the execution is the exec's stream, held open by the background sleep: the timer ends it.
            expect(r).toMatchObject({ timedOut: true, exitCode: null, stdout: 'forever\n' });
            expect(r.durationMs).toBeLessThan(1_300);
          } else {
            // runner (by design, docs/runner-protocol.md "Jobs"): the job is over when its process (sh) is reaped;
            // what the background sleep would write later is dropped. sh's exit code at once, no timeout. The
            // container still goes (single-use) and takes the sleep with it (checked below).
            expect(r).toMatchObject({
              timedOut: false,
              exitCode: 0,
              stdout: 'forever\n',
              transport: 'runner',
            });
          }
          ids.push(r.containerId);
        }
        for (const id of ids) {
          await eventually(
            async () => !(await onEngine(id)),
            10_000,
            `container ${id.slice(0, 12)} removed`,
          );
        }
        await fullPool();
        // Counts settle back (keep-alive sockets of the engine client may come and go, a handful at most).
        let after = activeResources();
        await eventually(
          () => {
            after = activeResources();
            return Object.entries(after).every(([type, n]) => n <= (before[type] ?? 0) + 3);
          },
          15_000,
          'active handles back to where they were',
        ).catch(() => {
          throw new Error(
            `active resources grew over 20 endless runs: before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
          );
        });
        expect(pool.events.eventNames().map((e) => pool.events.listenerCount(e))).toEqual(
          listenersBefore,
        );
        if (transport === 'exec') expect(pool.stats().totals.timeouts).toBeGreaterThanOrEqual(20);
        else expect(pool.stats().totals.timeouts).toBe(timeoutsBefore);
      }, 120_000);
    });
  },
);
