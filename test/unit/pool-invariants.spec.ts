import { randomUUID } from 'node:crypto';
/**
 * Randomized, seeded, reproducible invariant test of the pool's state machine on a fake engine whose creates,
 * removals and executions stay in flight until the test settles them, and whose clock is jest's fake clock.
 * Random interleavings of acquire, release, destroy, execute, caller aborts, create failures (also of the
 * engine), container deaths, resizes, drain/resume, the passing of time and finally shutdown. After every
 * step:
 *   - no container is leased to two callers at once, and a handed-out container is alive and leased;
 *   - no create starts while the pool already has maxContainers containers (creating, idle, leased or being
 *     removed), and the pool's own counts match the engine's;
 *   - no waiter is left past its timeout;
 * and at the end every container ever created is removed exactly once and every promise has settled.
 *
 * Reproduce a failure with INVARIANT_SEED=<seed> (printed on failure); INVARIANT_STEPS sets the steps per seed.
 */
import { Logger } from '@nestjs/common';
import { resolvePoolOptions } from '../../src/container-pool/config';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  ContainerCreateError,
  ContainerPoolError,
  EngineUnavailableError,
} from '../../src/container-pool/errors/container-pool.errors';
import type { Container } from '../../src/container-pool/interfaces/container.interface';
import { mulberry32 } from '../../bench/stats';
import { FakeDriver, type FakeExecResult } from '../support/fake-driver';

const DEFAULT_SEEDS = [1, 7, 42, 1337, 20240601, 987654321];
const SEEDS = process.env.INVARIANT_SEED
  ? process.env.INVARIANT_SEED.split(',').map((s) => Number(s.trim()))
  : DEFAULT_SEEDS;
const STEPS = Number(process.env.INVARIANT_STEPS ?? 400);

interface Holder {
  container: Container;
  key: number;
}

interface PendingExec {
  resolve(result: FakeExecResult): void;
  signal: AbortSignal;
}

interface TrackedPromise {
  what: string;
  settled: boolean;
  /** Fake-clock time by which it must have settled (acquires), or Infinity. */
  deadline: number;
}

/** Drains microtasks and the real setImmediate queue (timers are fake; setImmediate is not). */
async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

async function runScenario(seed: number, steps: number, log: string[]): Promise<void> {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T | undefined =>
    xs.length ? xs[int(0, xs.length - 1)] : undefined;
  const chance = (p: number) => rnd() < p;

  const driver = new FakeDriver();
  driver.manualCreates = true;
  driver.manualRemoves = true;
  const pendingExecs: PendingExec[] = [];
  driver.execBehaviour = (req) =>
    new Promise<FakeExecResult>((resolve) => {
      const entry: PendingExec = {
        signal: req.signal,
        resolve: (r) => {
          const i = pendingExecs.indexOf(entry);
          if (i >= 0) pendingExecs.splice(i, 1);
          resolve(r);
        },
      };
      const aborted = () =>
        entry.resolve({
          exitCode: null,
          stdout: Buffer.alloc(0),
          stderr: Buffer.alloc(0),
          truncated: false,
          aborted: true,
        });
      if (req.signal.aborted) return aborted();
      req.signal.addEventListener('abort', aborted, { once: true });
      pendingExecs.push(entry);
    });

  const maxContainers0 = int(1, 5);
  const options = resolvePoolOptions({
    name: `inv-${seed}`,
    image: 'fake:latest',
    size: int(0, maxContainers0),
    maxContainers: maxContainers0,
    maxWaiters: int(1, 8),
    maxConcurrentCreates: int(1, 3),
    acquireTimeoutMs: 300,
    replenishIntervalMs: 200,
    singleUse: chance(0.5),
    execTimeoutMs: 400,
    maxExecTimeoutMs: 1000,
    containerLifetimeMs: 10_000,
    shutdownGraceMs: 100,
    createTimeoutMs: 1000,
  });
  const pool = new ContainerPoolService(options, driver, randomUUID());
  // Container names carry the random instance id; the log keeps only their sequence number.
  const short = (name: string) => name.replace(/^cpool-.*-([0-9]+)$/, 'c$1');
  log.push(
    `options: size=${options.size} max=${options.maxContainers} maxWaiters=${options.maxWaiters} ` +
      `creates=${options.maxConcurrentCreates} singleUse=${options.singleUse}`,
  );

  // Every create must start below the cap in force, counting what the engine has and what is in flight.
  const origCreate = driver.createContainer.bind(driver);
  driver.createContainer = (spec, signal) => {
    const onEngine = driver.containers.size + driver.pendingCreates.length;
    const cap = pool.stats().maxContainers;
    if (onEngine >= cap) {
      unexpected.push(
        `create started with ${onEngine} containers on the engine at maxContainers ${cap}`,
      );
    }
    return origCreate(spec, signal);
  };

  const holders: Holder[] = [];
  const heldIds = new Set<string>();
  const tracked: TrackedPromise[] = [];
  const execAborts: AbortController[] = [];
  const acquireAborts: AbortController[] = [];
  let keySeq = 0;
  const unexpected: string[] = [];

  const track = (what: string, p: Promise<unknown>, deadline = Infinity) => {
    const t: TrackedPromise = { what, settled: false, deadline };
    tracked.push(t);
    p.then(
      () => (t.settled = true),
      (err: unknown) => {
        t.settled = true;
        // Everything the pool rejects with is one of its typed errors.
        if (!(err instanceof ContainerPoolError)) unexpected.push(`${what}: ${String(err)}`);
      },
    );
  };

  const acquire = () => {
    const timeoutMs = int(1, 400);
    const ac = chance(0.3) ? new AbortController() : undefined;
    if (ac) acquireAborts.push(ac);
    const key = ++keySeq;
    log.push(`acquire#${key} timeout=${timeoutMs}${ac ? ' +signal' : ''}`);
    const p = pool.acquire({ timeoutMs, signal: ac?.signal }).then((c) => {
      if (heldIds.has(c.id)) unexpected.push(`double lease of ${c.name} (acquire#${key})`);
      const fake = driver.containers.get(c.id);
      if (!fake || !fake.alive) unexpected.push(`acquire#${key} got dead container ${c.name}`);
      const row = pool.containers().find((r) => r.id === c.id);
      if (row?.state !== 'leased')
        unexpected.push(`acquire#${key} got ${c.name} in state ${row?.state}`);
      heldIds.add(c.id);
      holders.push({ container: c, key });
      return c;
    });
    // A waiter settles by its timeout; the +1 covers the timer firing at exactly the deadline.
    track(`acquire#${key}`, p, Date.now() + timeoutMs + 1);
  };

  const dropHolder = (h: Holder) => {
    holders.splice(holders.indexOf(h), 1);
    heldIds.delete(h.container.id);
  };

  type Op = [number, () => void | Promise<void>];
  const ops: Op[] = [
    [20, acquire],
    [
      12,
      () => {
        const h = pick(holders);
        if (!h) return;
        log.push(`release ${short(h.container.name)} (acquire#${h.key})`);
        dropHolder(h);
        pool.release(h.container);
      },
    ],
    [
      3,
      () => {
        const h = pick(holders);
        if (!h) return;
        log.push(`destroy ${short(h.container.name)}`);
        dropHolder(h);
        track(`destroy ${h.container.name}`, h.container.destroy());
      },
    ],
    [
      14,
      () => {
        const h = pick(holders);
        if (!h) return;
        const ac = chance(0.4) ? new AbortController() : undefined;
        if (ac) execAborts.push(ac);
        const timeoutMs = int(50, 1000);
        log.push(
          `execute in ${short(h.container.name)} timeout=${timeoutMs}${ac ? ' +signal' : ''}`,
        );
        track(
          `execute in ${h.container.name}`,
          h.container.execute(['work'], { timeoutMs, signal: ac?.signal }),
        );
      },
    ],
    [
      8,
      () => {
        const e = pick(pendingExecs);
        if (!e) return;
        const exitCode = int(0, 2);
        log.push(`exec finishes exit=${exitCode}`);
        e.resolve({
          exitCode,
          stdout: Buffer.from('out'),
          stderr: Buffer.alloc(0),
          truncated: false,
          aborted: false,
        });
      },
    ],
    [
      3,
      () => {
        const ac = execAborts.splice(int(0, Math.max(0, execAborts.length - 1)), 1)[0];
        if (!ac) return;
        log.push('caller aborts an execution');
        ac.abort(new Error('caller gave up'));
      },
    ],
    [
      3,
      () => {
        const ac = acquireAborts.splice(int(0, Math.max(0, acquireAborts.length - 1)), 1)[0];
        if (!ac) return;
        log.push('caller aborts an acquire');
        ac.abort(new Error('caller gave up'));
      },
    ],
    [
      15,
      () => {
        const c = pick(driver.pendingCreates);
        if (!c) return;
        log.push(`create ${short(c.spec.name)} succeeds`);
        c.succeed();
      },
    ],
    [
      4,
      () => {
        const c = pick(driver.pendingCreates);
        if (!c) return;
        const engine = chance(0.25);
        log.push(`create ${short(c.spec.name)} fails${engine ? ' (engine unavailable)' : ''}`);
        c.fail(
          engine
            ? new EngineUnavailableError('connect ECONNREFUSED (fake)')
            : new ContainerCreateError('injected failure'),
        );
      },
    ],
    [
      10,
      () => {
        const r = pick(driver.pendingRemoves);
        if (!r) return;
        log.push(`remove ${r.id.slice(-4)} finishes`);
        r.finish();
      },
    ],
    [
      4,
      () => {
        const c = pick(driver.live.filter((x) => x.alive));
        if (!c) return;
        log.push(`container ${short(c.name)} dies outside the pool`);
        c.die('killed outside the pool (fake)');
      },
    ],
    [
      3,
      () => {
        const maxContainers = int(1, 6);
        const size = int(0, maxContainers);
        log.push(`resize size=${size} max=${maxContainers}`);
        pool.resize({ size, maxContainers });
      },
    ],
    [
      1,
      () => {
        log.push('drain');
        track('drain', pool.drain());
      },
    ],
    [
      2,
      () => {
        if (!pool.stats().draining) return;
        log.push('resume');
        pool.resume();
      },
    ],
    [
      10,
      () => {
        const ms = int(1, 300);
        log.push(`time +${ms} ms`);
        jest.advanceTimersByTime(ms);
      },
    ],
  ];
  const totalWeight = ops.reduce((s, [w]) => s + w, 0);
  const randomOp = () => {
    let r = rnd() * totalWeight;
    for (const [w, op] of ops) {
      if ((r -= w) < 0) return op;
    }
    return ops[ops.length - 1][1];
  };

  const check = (when: string) => {
    if (unexpected.length) throw new Error(`${when}: ${unexpected.join('; ')}`);
    const s = pool.stats();
    const ids = pool.containers().map((r) => r.id || r.name);
    if (new Set(ids).size !== ids.length) throw new Error(`${when}: a container is listed twice`);
    // The pool's own count matches what the engine has and has in flight.
    const poolCount = s.idle + s.leased + s.creating + s.destroying;
    const engineCount = driver.containers.size + driver.pendingCreates.length;
    if (poolCount !== engineCount) {
      throw new Error(
        `${when}: pool counts ${poolCount} (${JSON.stringify({ idle: s.idle, leased: s.leased, creating: s.creating, destroying: s.destroying })}) ` +
          `but the engine has ${driver.containers.size} + ${driver.pendingCreates.length} creating`,
      );
    }
    // Every container the pool counts as leased is held by a caller: no slot leaks.
    const orphanLeases = pool
      .containers()
      .filter((r) => r.state === 'leased' && !heldIds.has(r.id));
    if (orphanLeases.length) {
      throw new Error(
        `${when}: leased but held by nobody: ${orphanLeases.map((r) => r.name).join(', ')}`,
      );
    }
    const now = Date.now();
    const late = tracked.filter((t) => !t.settled && t.deadline < now);
    if (late.length)
      throw new Error(
        `${when}: left hanging past their timeout: ${late.map((t) => t.what).join(', ')}`,
      );
  };

  track('initialize', pool.initialize());
  await flush();
  for (let step = 1; step <= steps; step++) {
    await randomOp()();
    await flush();
    check(`step ${step} (${log[log.length - 1]})`);
  }

  // Shutdown while everything may still be in flight: keep the fake engine and clock going until it is done.
  log.push('shutdown (twice)');
  const first = pool.shutdown();
  const second = pool.shutdown();
  expect(second).toBe(first);
  let done = false;
  void first.then(() => (done = true));
  for (let i = 0; !done; i++) {
    if (i > 10_000) throw new Error('shutdown never finished');
    for (const c of [...driver.pendingCreates]) c.succeed();
    for (const r of [...driver.pendingRemoves]) r.finish();
    jest.advanceTimersByTime(50);
    await flush();
  }
  await flush();
  check('after shutdown');

  const hanging = tracked.filter((t) => !t.settled);
  if (hanging.length)
    throw new Error(`promises never settled: ${hanging.map((t) => t.what).join(', ')}`);
  expect(driver.live).toEqual([]);
  expect(driver.pendingCreates).toEqual([]);
  for (const made of driver.created) {
    if (driver.removeCounts.get(made.id) !== 1) {
      throw new Error(
        `${made.name} was removed ${driver.removeCounts.get(made.id) ?? 0} times, not once`,
      );
    }
  }
  const s = pool.stats();
  expect(s).toMatchObject({ idle: 0, leased: 0, creating: 0, destroying: 0, waiting: 0 });
  expect(s.totals.created).toBe(driver.created.length);
  expect(s.totals.destroyed).toBe(driver.created.length);
  await expect(pool.acquire()).rejects.toThrow(/shutting down/);
  log.push(
    `done: created ${s.totals.created}, acquired ${s.totals.acquired}, timeouts ${s.totals.acquireTimeouts}, ` +
      `lost ${s.totals.containersLost}, failed creates ${s.totals.failedCreates}`,
  );
}

describe('pool state machine invariants (seeded random interleavings, fake engine)', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['error', 'warn', 'log']));
  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'],
    });
  });
  afterEach(() => jest.useRealTimers());

  it.each(SEEDS)(
    'seed %i: no double lease, cap held, each container removed once, no waiter hangs',
    async (seed) => {
      const log: string[] = [];
      try {
        await runScenario(seed, STEPS, log);
      } catch (err) {
        const tail = log.slice(-25).join('\n  ');
        throw new Error(
          `invariant broken with INVARIANT_SEED=${seed} (INVARIANT_STEPS=${STEPS}): ${(err as Error).message}\n` +
            `last steps:\n  ${tail}`,
          { cause: err },
        );
      }
    },
  );

  it('is reproducible: the same seed gives the same run', async () => {
    const a: string[] = [];
    const b: string[] = [];
    await runScenario(99, 150, a);
    await runScenario(99, 150, b);
    expect(b).toEqual(a);
  });
});
