import type { ChildProcess } from 'node:child_process';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../../src/container-pool/container-pool.service';
import { expectPoolHealthy, TRANSPORTS } from '../../support/hostile';
import {
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
  startPoolHost,
  transportOf,
  uniquePoolName,
} from '../../support/integration';

const OWNER = 'io.container-pool.owner';

/** 20. The service dies (SIGKILL) or freezes (SIGSTOP): its containers do not outlive it, a sibling's do. */
describe.each(TRANSPORTS)(
  'faults: the owning process is SIGKILLed or frozen (transport %s)',
  (transport) => {
    const name = uniquePoolName(`owner-${transport}`);
    const hosts: ChildProcess[] = [];
    let sibling: { app: INestApplication; pool: ContainerPoolService } | undefined;
    let siblingIds: string[] = [];

    /** A separate Node process hosting an instance of the same pool. */
    const startHost = (env: Record<string, string> = {}) =>
      startPoolHost({ POOL_NAME: name, POOL_TRANSPORT: transport, ...env }, hosts);

    const ownedBy = async (instanceId: string) => engineContainers(name, { [OWNER]: instanceId });

    async function expectSiblingUntouched(): Promise<void> {
      const s = sibling!;
      const now = await ownedBy(s.pool.instanceId);
      expect(now.map((c) => c.Id).sort()).toEqual([...siblingIds].sort());
      expect(now.every((c) => c.State === 'running')).toBe(true);
      expect(s.pool.stats().totals.containersLost).toBe(0);
    }

    beforeAll(async () => {
      // The sibling: another instance of the same pool (another owner id), alive throughout, never used here.
      sibling = await startPool({
        name,
        size: 2,
        maxContainers: 2,
        replenishIntervalMs: 60_000,
        transport,
      });
      await sibling.pool.initialize();
      siblingIds = (await ownedBy(sibling.pool.instanceId)).map((c) => c.Id);
      expect(siblingIds).toHaveLength(2);
    });

    afterEach(async () => {
      // The surviving instance of the pool still serves, and holds exactly its own containers.
      const s = sibling!;
      await expectPoolHealthy(s.pool, name, transport);
      // Its run used (and replaced) one of its containers: the next case compares against the new set.
      await eventually(
        () => s.pool.stats().idle === 2 && s.pool.stats().destroying === 0,
        20_000,
        'the sibling refilled',
      );
      siblingIds = (await ownedBy(s.pool.instanceId)).map((c) => c.Id);
      expect(siblingIds).toHaveLength(2);
    });

    afterAll(async () => {
      for (const h of hosts) {
        if (h.exitCode === null && h.signalCode === null) {
          h.kill('SIGCONT');
          h.kill('SIGKILL');
        }
      }
      if (sibling) {
        await expectPoolHealthy(sibling.pool, name, transport);
        await sibling.app.close();
      }
      await expectNoContainersLeft(name, 15_000);
    });

    it('SIGKILL: the dead instance containers are gone by the time a new instance has started', async () => {
      const first = await startHost();
      const mine = await ownedBy(first.instanceId);
      expect(mine).toHaveLength(3);
      // POOL_TRANSPORT reached the host: its containers are of the transport under test.
      for (const c of mine) expect(await transportOf(c.Id)).toBe(transport);
      first.child.kill('SIGKILL');
      const second = await startHost();
      expect(await ownedBy(first.instanceId)).toEqual([]);
      expect((await ownedBy(second.instanceId)).length).toBe(3);
      await expectSiblingUntouched();
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
      await eventually(
        async () => (await ownedBy(second.instanceId)).length === 0,
        10_000,
        'graceful exit',
      );
      await expectSiblingUntouched();
    }, 120_000);

    it('SIGKILL without any restart: the containers die with their owner (their lifeline)', async () => {
      const host = await startHost();
      expect(await ownedBy(host.instanceId)).toHaveLength(3);
      const killedAt = Date.now();
      host.child.kill('SIGKILL');
      await eventually(
        async () => (await ownedBy(host.instanceId)).length === 0,
        10_000,
        'orphans gone',
      );
      // Seconds, not the 30 min lifetime: the attached stdin of PID 1's child closed with the process.
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      await expectSiblingUntouched();
    }, 120_000);

    it('frozen owner (SIGSTOP, sockets open): its containers still do not outlive containerLifetimeMs', async () => {
      const lifetimeMs = 8_000;
      const host = await startHost({
        POOL_EXEC_TIMEOUT_MS: '1000',
        POOL_MAX_EXEC_TIMEOUT_MS: '1000',
        POOL_REPLENISH_INTERVAL_MS: '500',
        POOL_CONTAINER_LIFETIME_MS: String(lifetimeMs),
      });
      const mine = await ownedBy(host.instanceId);
      expect(mine).toHaveLength(3);
      const createdAt = Math.min(
        ...mine.map((c) => Date.parse(c.Labels['io.container-pool.created-at'])),
      );
      host.child.kill('SIGSTOP');
      // Frozen, its lifelines stay open: the containers live on for now...
      await new Promise((r) =>
        setTimeout(r, Math.max(0, createdAt + lifetimeMs - 3_000 - Date.now())),
      );
      expect(
        (await ownedBy(host.instanceId)).filter((c) => c.State === 'running').length,
      ).toBeGreaterThan(0);
      // ...and are gone once their lifetime is over (the in-container `timeout -s KILL`), plus removal slack.
      await eventually(
        async () => (await ownedBy(host.instanceId)).length === 0,
        Math.max(0, createdAt + lifetimeMs + 5_000 - Date.now()),
        'the frozen owner containers gone after their lifetime',
      );
      await expectSiblingUntouched();
      host.child.kill('SIGCONT');
      host.child.kill('SIGKILL');
    }, 120_000);
  },
);
