/**
 * 26 (lifetime under a CPU attack). Every container is gone within containerLifetimeMs + 2 s whatever the code
 * in it does, for both images: spinners at the container's whole CPU share (NanoCpus) must not delay the
 * lifeline's deadline. (A lifeline that counts in many one-second sleeps, as busybox's `timeout` does, drifted
 * by 5 s over 90 s here; the lifeline waits with one sleep of what is left.) The lifetime is long enough (90 s)
 * for such a drift to show.
 */
import type { ChildProcess } from 'node:child_process';
import { LABELS } from '../../../src';
import type { AttackOutcome } from '../../support/attack-host';
import { HOSTILE_LIMITS } from '../../support/hostile';
import {
  BUSYBOX_IMAGE,
  docker,
  engineContainers,
  SANDBOX_IMAGE,
  startPoolHost,
  transportOf,
  uniquePoolName,
} from '../../support/integration';

const LIFETIME_MS = 90_000;
const SPIN = [
  'sh',
  '-c',
  'for n in 1 2 3 4; do setsid sh -c "while :; do :; done" </dev/null >/dev/null 2>&1 & done; echo spinning',
];

describe('faults: the lifetime bound holds under a CPU attack (owner alive, never releasing)', () => {
  const hosts: ChildProcess[] = [];
  afterAll(() => {
    for (const h of hosts) h.kill('SIGKILL');
  });

  it(
    `busybox (exec) and python (exec, runner) containers are gone within expires-at + 2 s (lifetime ${LIFETIME_MS} ms)`,
    async () => {
      // Python on both transports (exec: docker-init's lifeline; runner: the runner's own deadline), busybox
      // on exec (no Python there).
      const names = {
        busybox: uniquePoolName('drift-bb'),
        python: uniquePoolName('drift-py'),
        pythonRunner: uniquePoolName('drift-pyr'),
      };
      const options = {
        ...HOSTILE_LIMITS,
        size: 0,
        maxContainers: 2,
        execTimeoutMs: 5_000,
        maxExecTimeoutMs: 5_000,
        replenishIntervalMs: 1_000,
        containerLifetimeMs: LIFETIME_MS,
      };
      const plan = {
        pools: [
          {
            name: names.busybox,
            image: BUSYBOX_IMAGE,
            options,
            attacks: [{ attack: 'cpu', cmd: SPIN }],
          },
          {
            name: names.python,
            image: SANDBOX_IMAGE,
            options: { ...options, transport: 'exec' as const },
            attacks: [{ attack: 'cpu', cmd: SPIN }],
          },
          {
            name: names.pythonRunner,
            image: SANDBOX_IMAGE,
            options: { ...options, transport: 'runner' as const },
            attacks: [{ attack: 'cpu', cmd: SPIN }],
          },
        ],
      };
      const host = await startPoolHost(
        { ATTACK_HOST_PLAN: JSON.stringify(plan) },
        hosts,
        'attack-host.ts',
      );
      const outcomes = host.stdout
        .split('\n')
        .filter((l) => l.startsWith('ATTACK '))
        .map((l) => JSON.parse(l.slice(7)) as AttackOutcome);
      expect(outcomes.map((o) => o.stdout?.trim())).toEqual(['spinning', 'spinning', 'spinning']);
      const targets = await Promise.all(
        Object.entries(names).map(async ([kind, pool]) => {
          const [row] = await engineContainers(pool);
          return {
            kind,
            id: row.Id,
            expiresAt: Date.parse(row.Labels[LABELS.expiresAt]),
            transport: await transportOf(row.Id),
          };
        }),
      );
      const goneAt = new Map<string, number>();
      const until = Math.max(...targets.map((t) => t.expiresAt)) + 60_000;
      while (goneAt.size < targets.length && Date.now() < until) {
        for (const t of targets) {
          if (goneAt.has(t.id)) continue;
          const rows = await docker.listContainers({ all: true, filters: { id: [t.id] } });
          if (!rows.length) goneAt.set(t.id, Date.now());
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const late = Object.fromEntries(
        targets.map((t) => [t.kind, (goneAt.get(t.id) ?? Infinity) - t.expiresAt]),
      );
      console.log(`ms after expires-at: ${JSON.stringify(late)}`);
      expect(Object.fromEntries(targets.map((t) => [t.kind, t.transport]))).toEqual({
        busybox: 'exec',
        python: 'exec',
        pythonRunner: 'runner',
      });
      expect(late).toEqual({
        busybox: expect.any(Number),
        python: expect.any(Number),
        pythonRunner: expect.any(Number),
      });
      expect(late.python).toBeLessThanOrEqual(2_000);
      expect(late.pythonRunner).toBeLessThanOrEqual(2_000);
      expect(late.busybox).toBeLessThanOrEqual(2_000);
    },
    LIFETIME_MS + 180_000,
  );
});
