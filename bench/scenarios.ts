/**
 * The measurements. Each function runs one part of the benchmark against the real engine and returns raw
 * samples (ms); bench/report.ts turns them into tables, ratios and target checks. Nothing here asserts timing.
 *
 *   A  cold: create + start + exec per execution (the remove that follows is timed separately)
 *   B  testcontainers-node: GenericContainer start + exec per execution (stop timed separately)
 *   C  the pool: run() through a warm single-use pool, on the exec transport (one `docker exec` per execution)
 *   R  the pool on the runner transport (runner.py is PID 1, each job a pre-forked child over the attached stdio)
 *   D  the floor: exec into one running container, no pool
 */
import { openSync, closeSync, writeSync } from 'node:fs';
import { ConsoleLogger, Logger } from '@nestjs/common';
import type Dockerode from 'dockerode';
import { v4 as uuidv4 } from 'uuid';
import type { ContainerPoolService } from '../src/container-pool/container-pool.service';
import type { ResolvedContainerPoolOptions } from '../src/container-pool/interfaces/container-pool-options.interface';
import type { RunRequest } from '../src/container-pool/interfaces/run-request.interface';
import type { TransportName } from '../src/container-pool/transport/transport.interface';
import {
  benchSpec,
  parallel,
  rawCreateStart,
  rawExec,
  rawRemove,
  type RawExecResult,
} from './engine';
import { readHostMemory, type HostMemorySnapshot } from './memory';
import { BenchPool, startBenchPool, waitSettled } from './pool-host';

const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type SnippetKey = 'python' | 'shell';

/** One workload, expressed the way each approach runs it. */
export interface Snippet {
  key: SnippetKey;
  label: string;
  /** argv for the raw exec (A, B, D). */
  cmd: string[];
  /** What C passes to pool.run(). */
  request: RunRequest;
  /**
   * The same program as a plain command (run({ cmd })), when `request` is something else: C' runs it, so that
   * the pool's own overhead and the cost of run({ code })'s framing (code on stdin) show separately.
   */
  cmdRequest?: RunRequest;
  /** Expected stdout (every sample is checked). */
  expect: string;
}

const PYTHON_CODE =
  'import json, math\nprint(json.dumps({"sum": sum(i * i for i in range(1000)), "pi": round(math.pi, 5)}))';

export const SNIPPETS: Record<SnippetKey, Snippet> = {
  python: {
    key: 'python',
    label: 'Python snippet',
    cmd: ['python3', '-c', PYTHON_CODE],
    request: { code: PYTHON_CODE },
    cmdRequest: { cmd: ['python3', '-c', PYTHON_CODE] },
    expect: '{"sum": 332833500, "pi": 3.14159}\n',
  },
  shell: {
    key: 'shell',
    label: 'shell echo',
    cmd: ['sh', '-c', 'echo hello'],
    request: { cmd: ['sh', '-c', 'echo hello'] },
    expect: 'hello\n',
  },
};

export interface BenchContext {
  docker: Dockerode;
  image: string;
  /** The run's id: its containers are labelled io.container-pool.bench-run=<runId>, the cleanup removes by it. */
  runId: string;
  /** Labels of every container the run creates outside the pool (A, B, D, raw cycles and fills). */
  labels: Record<string, string>;
  /** Prefix of pool names (the tests use `test-…` names so that their leak check covers the bench). */
  poolPrefix: string;
  /** The pool's resolved options: raw containers are built from the same spec. */
  options: ResolvedContainerPoolOptions;
  /** The image's own ENV, which the pool's containers unset (toCreateOptions' second argument). */
  imageEnv: string[];
  log: (line: string) => void;
}

let nameSeq = 0;
function rawName(ctx: BenchContext, what: string): string {
  return `bench-${ctx.runId}-${what}-${++nameSeq}`;
}

function check(snippet: Snippet, stdout: string, exitCode: number | null, what: string): void {
  if (exitCode !== 0 || stdout !== snippet.expect) {
    throw new Error(
      `${what} (${snippet.key}) gave exit ${exitCode} and stdout ${JSON.stringify(stdout)}, ` +
        `expected exit 0 and ${JSON.stringify(snippet.expect)}`,
    );
  }
}

// ------------------------------------------------------------------------------------------------ A: cold

export interface ColdSample {
  /** create + start + exec until the result is in hand. */
  latency: number;
  create: number;
  start: number;
  exec: number;
  execCreate: number;
  execStart: number;
  stream: number;
  inspect: number;
  /** The remove({ force: true }) that follows, timed on its own. */
  remove: number;
}

/** A: one hardened container per execution, created, started, exec'd, then removed. */
export async function coldOnce(ctx: BenchContext, snippet: Snippet): Promise<ColdSample> {
  const spec = benchSpec(ctx.options, rawName(ctx, 'cold'), ctx.labels);
  const t0 = now();
  const { container, create, start } = await rawCreateStart(ctx.docker, spec, ctx.imageEnv);
  let r: RawExecResult;
  let latency: number;
  try {
    r = await rawExec(ctx.docker, container, snippet.cmd);
    latency = now() - t0;
  } catch (err) {
    await rawRemove(ctx.docker, container.id).catch(() => undefined);
    throw err;
  }
  const tRemove = now();
  await rawRemove(ctx.docker, container.id);
  const remove = now() - tRemove;
  check(snippet, r.stdout, r.exitCode, 'cold exec');
  const p = r.phases;
  return {
    latency,
    create,
    start,
    exec: p.execCreate + p.execStart + p.stream + p.inspect,
    execCreate: p.execCreate,
    execStart: p.execStart,
    stream: p.stream,
    inspect: p.inspect,
    remove,
  };
}

// ------------------------------------------------------------------------------------------------ B: testcontainers

export interface TestcontainersSample {
  /** GenericContainer.start() + exec until the result is in hand. */
  latency: number;
  start: number;
  exec: number;
  /** StartedTestContainer.stop() (kill + remove), timed on its own. */
  stop: number;
}

type TestcontainersModule = typeof import('testcontainers');
let tcModule: TestcontainersModule | undefined;

/**
 * testcontainers-node, set up as its docs suggest for a registry-less machine: Ryuk (the reaper, whose image
 * would be pulled from a registry) disabled, the default pull policy (pulls only when the image is missing;
 * the image is local), and network mode none. The container gets what hardening the GenericContainer API
 * offers in a few lines; PID 1 is `sleep infinity`, each execution is a `docker exec`.
 */
export async function loadTestcontainers(): Promise<TestcontainersModule> {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  if (process.env.TESTCONTAINERS_RYUK_DISABLED !== 'true') {
    throw new Error(
      'TESTCONTAINERS_RYUK_DISABLED must be true: the reaper image would be pulled from a registry',
    );
  }
  tcModule ??= await import('testcontainers');
  return tcModule;
}

export async function testcontainersOnce(
  ctx: BenchContext,
  snippet: Snippet,
): Promise<TestcontainersSample> {
  const { GenericContainer } = await loadTestcontainers();
  const o = ctx.options;
  const t0 = now();
  const started = await new GenericContainer(ctx.image)
    .withName(rawName(ctx, 'tc'))
    .withCommand(['sleep', 'infinity'])
    .withNetworkMode('none')
    .withUser(o.user)
    .withResourcesQuota({ memory: o.memoryBytes / 1024 ** 3, cpu: o.nanoCpus / 1e9 })
    .withDroppedCapabilities('ALL')
    .withSecurityOpt('no-new-privileges:true')
    .withTmpFs({ '/tmp': `rw,nosuid,nodev,noexec,size=${o.tmpSizeBytes}` })
    .withLabels(ctx.labels)
    .start();
  const t1 = now();
  let result: Awaited<ReturnType<typeof started.exec>>;
  let latency: number;
  try {
    result = await started.exec(snippet.cmd);
    latency = now() - t0;
  } catch (err) {
    await started.stop().catch(() => undefined);
    throw err;
  }
  const tStop = now();
  await started.stop();
  const stop = now() - tStop;
  check(snippet, result.stdout, result.exitCode, 'testcontainers exec');
  return { latency, start: t1 - t0, exec: latency - (t1 - t0), stop };
}

// ------------------------------------------------------------------------------------------------ C and D

export interface PairSample {
  /** pool.run() as the caller sees it. */
  c: number;
  /** Raw exec into the running floor container. */
  d: number;
  /** Which ran first in this pair. */
  first: 'C' | 'D';
  /** Time C spent inside the driver's exec (engine work); c - cDriverExec is the pool's own time. */
  cDriverExec: number;
  /** Phases of D's exec. */
  dPhases: { execCreate: number; execStart: number; stream: number; inspect: number };
  dExtraInspects: number;
}

/** C: one run() through the pool (`asCmd`: C', the snippet's plain-command form). */
export async function poolOnce(
  host: BenchPool,
  snippet: Snippet,
  asCmd = false,
): Promise<{ latency: number; driverExec: number }> {
  host.lastDriverExecMs = NaN;
  const t0 = now();
  const r = await host.pool.run(asCmd && snippet.cmdRequest ? snippet.cmdRequest : snippet.request);
  const latency = now() - t0;
  check(snippet, r.stdout, r.exitCode, 'pool run()');
  if (host.transport !== 'auto' && r.transport !== host.transport) {
    throw new Error(`pool run() ran on the ${r.transport} transport, expected ${host.transport}`);
  }
  return { latency, driverExec: host.lastDriverExecMs };
}

/** D: one raw exec into the already running container. */
export async function floorOnce(
  ctx: BenchContext,
  container: Dockerode.Container,
  snippet: Snippet,
) {
  const t0 = now();
  const r = await rawExec(ctx.docker, container, snippet.cmd);
  const latency = now() - t0;
  check(snippet, r.stdout, r.exitCode, 'floor exec');
  return { latency, phases: r.phases, extraInspects: r.extraInspects };
}

/** Quiet time after the pool settled, before a settled measurement: the engine finishes its own tail work. */
export const SETTLE_QUIET_MS = 50;

/**
 * One C/D pair in the given order. With `settle`, each of the two starts on a full, quiet pool: the refill (and
 * removal) of the previous C finished and SETTLE_QUIET_MS passed, so that neither pays for the other's engine
 * work (without it, whichever runs second is ~10 ms slower). Without `settle`, the two run back to back and the
 * refill competes with both for the same cores.
 */
export async function pairOnce(
  ctx: BenchContext,
  host: BenchPool,
  floor: Dockerode.Container,
  snippet: Snippet,
  first: 'C' | 'D',
  settle: boolean,
): Promise<PairSample> {
  const settled = () => (settle ? waitSettled(host.pool, 30_000, SETTLE_QUIET_MS) : undefined);
  let c!: { latency: number; driverExec: number };
  let d!: Awaited<ReturnType<typeof floorOnce>>;
  await settled();
  if (first === 'C') {
    c = await poolOnce(host, snippet);
    await settled();
    d = await floorOnce(ctx, floor, snippet);
  } else {
    d = await floorOnce(ctx, floor, snippet);
    await settled();
    c = await poolOnce(host, snippet);
  }
  return {
    c: c.latency,
    d: d.latency,
    first,
    cDriverExec: c.driverExec,
    dPhases: d.phases,
    dExtraInspects: d.extraInspects,
  };
}

/** Starts the long-running container D execs into (the pool's hardened spec, benchmark labels). */
export async function startFloorContainer(ctx: BenchContext): Promise<Dockerode.Container> {
  const { container } = await rawCreateStart(
    ctx.docker,
    benchSpec(ctx.options, rawName(ctx, 'floor'), ctx.labels),
    ctx.imageEnv,
  );
  return container;
}

// ------------------------------------------------------------------------------------------------ the four-way run

export interface FourWayResult {
  snippet: SnippetKey;
  cold: ColdSample[];
  testcontainers: TestcontainersSample[];
  /** Settled pairs: C and D with the refill finished before each pair, alternating order. */
  pairs: PairSample[];
  /** Back-to-back pairs: no waiting, the refill competes with the executions. */
  backToBack: PairSample[];
  /** C' (the snippet as run({ cmd })), settled, one per round; empty when the snippet has no cmdRequest. */
  cmdVariant: number[];
}

export interface FourWayPlan {
  /** Rounds kept per snippet; each round is one A, one B (while `tc` lasts) and one settled C/D pair. */
  rounds: number;
  /** Rounds run first and thrown away. */
  warmup: number;
  /** B samples kept (B is the slowest; it may have fewer). */
  testcontainers: number;
  /** Back-to-back C/D pairs kept. */
  backToBack: number;
}

/**
 * A, B and the settled C/D pair are interleaved round by round, so that the four see the same machine over the
 * same minutes (a shared machine drifts); the back-to-back pairs follow.
 */
export async function runFourWay(
  ctx: BenchContext,
  host: BenchPool,
  floor: Dockerode.Container,
  snippet: Snippet,
  plan: FourWayPlan,
): Promise<FourWayResult> {
  const result: FourWayResult = {
    snippet: snippet.key,
    cold: [],
    testcontainers: [],
    pairs: [],
    backToBack: [],
    cmdVariant: [],
  };
  const total = plan.warmup + plan.rounds;
  for (let i = 0; i < total; i++) {
    const keep = i >= plan.warmup;
    const cold = await coldOnce(ctx, snippet);
    if (keep) result.cold.push(cold);
    if (i < plan.warmup + plan.testcontainers) {
      const tc = await testcontainersOnce(ctx, snippet);
      if (keep) result.testcontainers.push(tc);
    }
    const pair = await pairOnce(ctx, host, floor, snippet, i % 2 === 0 ? 'C' : 'D', true);
    if (keep) result.pairs.push(pair);
    if (snippet.cmdRequest) {
      await waitSettled(host.pool, 30_000, SETTLE_QUIET_MS);
      const cmd = await poolOnce(host, snippet, true);
      if (keep) result.cmdVariant.push(cmd.latency);
    }
    if ((i + 1) % 25 === 0) ctx.log(`  ${snippet.key}: ${i + 1}/${total} rounds`);
  }
  result.backToBack = await backToBack(ctx, host, floor, snippet, plan.backToBack);
  return result;
}

/** Executions per block of the back-to-back comparison (the first of each block is not kept). */
export const BACK_TO_BACK_BLOCK = 10;

/**
 * Back to back: blocks of consecutive run() calls (C) and blocks of consecutive raw execs (D), alternating
 * which block comes first. Within a C block every run's refill and removal compete with the next runs for the
 * same cores, as for a caller that runs one execution after the other; D blocks have no such work. The first
 * execution of each block starts on a quiet pool and is not kept. The i-th kept C is paired with the i-th D.
 */
export async function backToBack(
  ctx: BenchContext,
  host: BenchPool,
  floor: Dockerode.Container,
  snippet: Snippet,
  count: number,
): Promise<PairSample[]> {
  const cs: Array<{ latency: number; driverExec: number }> = [];
  const ds: Array<Awaited<ReturnType<typeof floorOnce>>> = [];
  const firsts: Array<'C' | 'D'> = [];
  for (let b = 0; cs.length < count; b++) {
    const cBlock = async () => {
      for (let k = 0; k < BACK_TO_BACK_BLOCK; k++) {
        const c = await poolOnce(host, snippet);
        if (k > 0 && cs.length < count) cs.push(c);
      }
    };
    const dBlock = async () => {
      for (let k = 0; k < BACK_TO_BACK_BLOCK; k++) {
        const d = await floorOnce(ctx, floor, snippet);
        if (k > 0 && ds.length < count) ds.push(d);
      }
    };
    await waitSettled(host.pool, 30_000, SETTLE_QUIET_MS);
    const first = b % 2 === 0 ? 'C' : 'D';
    for (let k = 1; k < BACK_TO_BACK_BLOCK; k++) firsts.push(first);
    if (first === 'C') {
      await cBlock();
      await waitSettled(host.pool, 30_000, SETTLE_QUIET_MS);
      await dBlock();
    } else {
      await dBlock();
      await cBlock();
    }
  }
  return cs.map((c, i) => ({
    c: c.latency,
    d: ds[i].latency,
    first: firsts[i],
    cDriverExec: c.driverExec,
    dPhases: ds[i].phases,
    dExtraInspects: ds[i].extraInspects,
  }));
}

// ------------------------------------------------------------------------------------------------ R: the runner

export interface RunnerPlan {
  /** Settled runner run()s kept per snippet (issue #14: at least 300). */
  rounds: number;
  /** Rounds run first and thrown away. */
  warmup: number;
  /** A settled D (raw exec into the floor) every `dEvery` rounds, order alternating: fewer exec-side samples. */
  dEvery: number;
  /** Back-to-back runner run()s kept (blocks of BACK_TO_BACK_BLOCK against blocks of raw execs). */
  backToBack: number;
}

export interface RunnerResult {
  snippet: SnippetKey;
  /** Settled run()s on the runner transport, one per round, in order. */
  settled: number[];
  /** Settled raw execs of the same snippet into the floor container, in the same minutes. */
  floor: number[];
  /** The run() of each round that also had a D, and that D (C first on even pairs). */
  pairs: PairSample[];
  backToBack: PairSample[];
  /** The first run() of the pool (thrown away with the warm-up; reported on its own). */
  firstRunMs: number;
}

/**
 * R: run() on the runner transport through a warm single-use pool, each run on a settled pool (the previous
 * run's container removed and its replacement's runner up, then SETTLE_QUIET_MS), against settled raw execs
 * of the same snippet into the floor container (one every `dEvery` rounds, order alternating).
 */
export async function runRunner(
  ctx: BenchContext,
  host: BenchPool,
  floor: Dockerode.Container,
  snippet: Snippet,
  plan: RunnerPlan,
): Promise<RunnerResult> {
  const result: RunnerResult = {
    snippet: snippet.key,
    settled: [],
    floor: [],
    pairs: [],
    backToBack: [],
    firstRunMs: NaN,
  };
  const total = plan.warmup + plan.rounds;
  let pairNo = 0;
  for (let i = 0; i < total; i++) {
    const keep = i >= plan.warmup;
    if (i % plan.dEvery === 0) {
      const pair = await pairOnce(ctx, host, floor, snippet, pairNo++ % 2 === 0 ? 'C' : 'D', true);
      if (i === 0) result.firstRunMs = pair.c;
      if (keep) {
        result.settled.push(pair.c);
        result.floor.push(pair.d);
        result.pairs.push(pair);
      }
    } else {
      await waitSettled(host.pool, 30_000, SETTLE_QUIET_MS);
      const c = await poolOnce(host, snippet);
      if (keep) result.settled.push(c.latency);
    }
    if ((i + 1) % 100 === 0) ctx.log(`  runner ${snippet.key}: ${i + 1}/${total} rounds`);
  }
  result.backToBack = await backToBack(ctx, host, floor, snippet, plan.backToBack);
  return result;
}

// ------------------------------------------------------------------------------------------------ acquire()

export interface AcquireResult {
  /** Every acquire() of an idle container, call to resolution. */
  samples: number[];
  /** Only the first acquire of each round (the pool full and quiet). */
  firstOfRound: number[];
}

/**
 * acquire() on its own: the pool is filled to `perRound` idle containers, then `perRound` acquires run one after
 * the other (each takes an idle container; the refill it triggers starts in the background), then all are
 * released and the pool settles again.
 */
export async function measureAcquire(
  ctx: BenchContext,
  rounds: number,
  perRound: number,
  warmupRounds = 1,
): Promise<AcquireResult> {
  const host = await startBenchPool({
    name: `${ctx.poolPrefix}-acq`,
    image: ctx.image,
    size: perRound,
    maxContainers: Math.max(16, perRound * 2),
    maxConcurrentCreates: 4,
  });
  const samples: number[] = [];
  const firstOfRound: number[] = [];
  try {
    for (let r = 0; r < warmupRounds + rounds; r++) {
      await waitSettled(host.pool, 60_000, 20);
      const held = [];
      for (let i = 0; i < perRound; i++) {
        const t0 = now();
        const c = await host.pool.acquire();
        const ms = now() - t0;
        held.push(c);
        if (r >= warmupRounds) {
          samples.push(ms);
          if (i === 0) firstOfRound.push(ms);
        }
      }
      for (const c of held) host.pool.release(c);
    }
  } finally {
    await host.close();
  }
  return { samples, firstOfRound };
}

// ------------------------------------------------------------------------------------------------ throughput

export interface ThroughputSide {
  /** Completed single-use runs inside the measuring window. */
  runs: number;
  windowMs: number;
  perSecond: number;
  /** CPU time of this Node process per run (user + system), ms. */
  nodeCpuMsPerRun: number;
  /** Latency of the runs that completed inside the window. */
  latencies: number[];
}

export interface ThroughputResult {
  concurrency: number;
  /** Raw cycle per run: create + start, exec, remove (each worker waits for its remove). */
  raw: ThroughputSide;
  /** pool.run() per run through a single-use pool, exec transport. */
  pool: ThroughputSide;
  /** The same on the runner transport (absent when not measured). */
  runner?: ThroughputSide;
  poolConfig: { size: number; maxContainers: number; maxConcurrentCreates: number };
}

async function sustained(
  concurrency: number,
  warmupMs: number,
  windowMs: number,
  once: () => Promise<void>,
): Promise<ThroughputSide> {
  const t0 = now();
  const from = t0 + warmupMs;
  const to = from + windowMs;
  let runs = 0;
  const latencies: number[] = [];
  let cpuFrom: NodeJS.CpuUsage | undefined;
  let cpuTo: NodeJS.CpuUsage | undefined;
  const startTimer = setTimeout(() => (cpuFrom = process.cpuUsage()), warmupMs);
  const endTimer = setTimeout(() => (cpuTo = process.cpuUsage(cpuFrom)), warmupMs + windowMs);
  const worker = async () => {
    while (now() < to) {
      const s = now();
      await once();
      const e = now();
      if (e >= from && e <= to) {
        runs++;
        latencies.push(e - s);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
  }
  const cpu = cpuTo ?? process.cpuUsage(cpuFrom);
  return {
    runs,
    windowMs,
    perSecond: (runs * 1000) / windowMs,
    nodeCpuMsPerRun: runs ? (cpu.user + cpu.system) / 1000 / runs : NaN,
    latencies,
  };
}

/**
 * Sustained single-use runs of the shell snippet at a given concurrency, raw cycle against the pool on each of
 * `transports`, measured over the same window after a warm-up (the pool's initial stock is used up during the
 * warm-up, so the window sees its steady state: refill overlapping with executions). `poolFirst`: the pools
 * (in the reverse order of `transports`) before the raw cycle; else the raw cycle, then the pools in order.
 */
export async function measureThroughput(
  ctx: BenchContext,
  concurrency: number,
  warmupMs: number,
  windowMs: number,
  poolFirst: boolean,
  maxConcurrentCreates: number,
  transports: TransportName[] = ['exec'],
): Promise<ThroughputResult> {
  const snippet = SNIPPETS.shell;
  const poolConfig = {
    size: concurrency,
    maxContainers: Math.max(16, concurrency * 2),
    maxConcurrentCreates,
  };
  const rawSide = () =>
    sustained(concurrency, warmupMs, windowMs, async () => {
      const spec = benchSpec(ctx.options, rawName(ctx, 'tp'), ctx.labels);
      const { container } = await rawCreateStart(ctx.docker, spec, ctx.imageEnv);
      try {
        const r = await rawExec(ctx.docker, container, snippet.cmd);
        check(snippet, r.stdout, r.exitCode, 'raw cycle exec');
      } finally {
        await rawRemove(ctx.docker, container.id);
      }
    });
  const poolSide = async (transport: TransportName) => {
    const host = await startBenchPool({
      name: `${ctx.poolPrefix}-tp${concurrency}-${transport}`,
      image: ctx.image,
      transport,
      ...poolConfig,
    });
    try {
      await waitSettled(host.pool, 60_000, 50);
      return await sustained(concurrency, warmupMs, windowMs, async () => {
        await poolOnce(host, snippet);
      });
    } finally {
      await host.close();
    }
  };
  const pools: Partial<Record<TransportName, ThroughputSide>> = {};
  let raw: ThroughputSide;
  if (poolFirst) {
    for (const t of [...transports].reverse()) {
      pools[t] = await poolSide(t);
      await sleep(500);
    }
    raw = await rawSide();
  } else {
    raw = await rawSide();
    for (const t of transports) {
      await sleep(500);
      pools[t] = await poolSide(t);
    }
  }
  await sleep(500);
  const empty: ThroughputSide = {
    runs: 0,
    windowMs: 0,
    perSecond: NaN,
    nodeCpuMsPerRun: NaN,
    latencies: [],
  };
  return {
    concurrency,
    raw,
    pool: pools.exec ?? empty,
    ...(pools.runner ? { runner: pools.runner } : {}),
    poolConfig,
  };
}

/**
 * Both orders of measureThroughput (raw then pool, pool then raw), merged: whichever side runs second meets the
 * engine's leftovers of the first, so one order alone favours one side (seen: ratio 0.82 one way, 1.09 the other).
 */
export async function measureThroughputBothOrders(
  ctx: BenchContext,
  concurrency: number,
  warmupMs: number,
  windowMs: number,
  maxConcurrentCreates: number,
  transports: TransportName[] = ['exec'],
): Promise<ThroughputResult> {
  const a = await measureThroughput(
    ctx,
    concurrency,
    warmupMs,
    windowMs,
    false,
    maxConcurrentCreates,
    transports,
  );
  const b = await measureThroughput(
    ctx,
    concurrency,
    warmupMs,
    windowMs,
    true,
    maxConcurrentCreates,
    transports,
  );
  const merge = (x: ThroughputSide, y: ThroughputSide): ThroughputSide => {
    const runs = x.runs + y.runs;
    const ms = x.windowMs + y.windowMs;
    return {
      runs,
      windowMs: ms,
      perSecond: (runs * 1000) / ms,
      nodeCpuMsPerRun: runs
        ? ((x.nodeCpuMsPerRun || 0) * x.runs + (y.nodeCpuMsPerRun || 0) * y.runs) / runs
        : NaN,
      latencies: [...x.latencies, ...y.latencies],
    };
  };
  return {
    concurrency,
    raw: merge(a.raw, b.raw),
    pool: merge(a.pool, b.pool),
    ...(a.runner && b.runner ? { runner: merge(a.runner, b.runner) } : {}),
    poolConfig: a.poolConfig,
  };
}

// ------------------------------------------------------------------------------------------------ fill

export interface FillResult {
  containers: number;
  concurrency: number;
  /** Raw parallel create + start of `containers` containers, `concurrency` at a time (ms, one per repetition). */
  rawMs: number[];
  /**
   * From resize({ size }) of an empty, prepared pool until the last container is idle (ms, per repetition),
   * exec transport.
   */
  poolMs: number[];
  /** The same on the runner transport (idle = the runner said HELLO); empty when not measured. */
  runnerMs: number[];
}

/** Waits until the pool has `n` idle containers (checked on every 'created' event). */
function whenIdle(pool: ContainerPoolService, n: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pool.events.off('created', onCreated);
      reject(
        new Error(
          `the pool did not reach ${n} idle within ${timeoutMs} ms: ${JSON.stringify(pool.stats())}`,
        ),
      );
    }, timeoutMs);
    const onCreated = () =>
      // 'created' fires just before the container joins the idle list: look after the current callback.
      queueMicrotask(() => {
        if (pool.stats().idle < n) return;
        clearTimeout(timer);
        pool.events.off('created', onCreated);
        resolve();
      });
    pool.events.on('created', onCreated);
  });
}

/**
 * Filling: an empty pool (on each of `transports`) told to hold `n` (maxConcurrentCreates = concurrency)
 * against `n` raw create + start at the same concurrency. Repetitions alternate the order (raw first, then
 * the pools in order; or the pools in reverse order, then raw); everything is removed (untimed) between them.
 */
export async function measureFill(
  ctx: BenchContext,
  n: number,
  concurrency: number,
  reps: number,
  onFull?: (host: BenchPool) => Promise<void>,
  transports: TransportName[] = ['exec'],
): Promise<FillResult> {
  const result: FillResult = { containers: n, concurrency, rawMs: [], poolMs: [], runnerMs: [] };
  const raw = async () => {
    const t0 = now();
    const made = await parallel(n, concurrency, () =>
      rawCreateStart(
        ctx.docker,
        benchSpec(ctx.options, rawName(ctx, 'fill'), ctx.labels),
        ctx.imageEnv,
      ),
    );
    result.rawMs.push(now() - t0);
    await parallel(made.length, 4, (i) => rawRemove(ctx.docker, made[i].container.id));
  };
  const pooled = async (transport: TransportName, last: boolean) => {
    const host = await startBenchPool({
      name: `${ctx.poolPrefix}-fill${concurrency}-${transport}`,
      image: ctx.image,
      transport,
      size: 0,
      maxContainers: n + 4,
      maxConcurrentCreates: concurrency,
    });
    try {
      await sleep(200);
      const full = whenIdle(host.pool, n, 120_000);
      const t0 = now();
      host.pool.resize({ size: n });
      await full;
      (transport === 'runner' ? result.runnerMs : result.poolMs).push(now() - t0);
      if (last && onFull && transport === transports[0]) await onFull(host);
    } finally {
      await host.close();
    }
  };
  for (let r = 0; r < reps; r++) {
    const last = r === reps - 1;
    if (r % 2 === 0) {
      await raw();
      for (const t of transports) {
        await sleep(300);
        await pooled(t, last);
      }
    } else {
      for (const t of [...transports].reverse()) {
        await pooled(t, last);
        await sleep(300);
      }
      await raw();
    }
    await sleep(300);
  }
  return result;
}

// ------------------------------------------------------------------------------------------------ memory

export interface MemoryResult {
  transport: TransportName;
  containers: number;
  method: string;
  /** Host-side snapshot with the pool empty, and with `containers` idle containers. */
  before: HostMemorySnapshot;
  after: HostMemorySnapshot;
  perContainer: {
    /** The container's own cgroup: memory.usage_in_bytes (includes page cache), and its rss part. */
    cgroupUsageBytes: number | null;
    cgroupRssBytes: number | null;
    /** Anonymous memory of the container's containerd-shim (what one more shim costs). */
    shimAnonBytes: number | null;
    /** Proportional set size of the shim (adds its share of the shim binary, in the page cache anyway). */
    shimPssBytes: number | null;
    /** Growth of dockerd + containerd RSS, divided by the containers (noisy: Go heaps grow in steps). */
    engineRssDeltaBytes: number;
    /** cgroup usage + shim anonymous memory + engine growth (when positive). */
    totalBytes: number | null;
    /** MemAvailable drop of the whole machine, divided (noisy on a shared machine). */
    memAvailableDeltaBytes: number;
  };
}

/** Memory of `n` idle pool containers of `transport`, seen from the host (see bench/memory.ts for the method). */
export async function measureMemory(
  ctx: BenchContext,
  n: number,
  transport: TransportName = 'exec',
): Promise<MemoryResult> {
  const host = await startBenchPool({
    name: `${ctx.poolPrefix}-mem-${transport}`,
    image: ctx.image,
    transport,
    size: 0,
    maxContainers: n + 4,
    maxConcurrentCreates: 4,
  });
  try {
    await sleep(1000);
    const before = await readHostMemory([]);
    host.pool.resize({ size: n });
    await waitSettled(host.pool, 120_000, 2000);
    const ids = host.pool.containers().map((c) => c.id);
    const after = await readHostMemory(ids);
    const perCg = (v: number | null) => (v === null ? null : v / after.cgroupsFound);
    const engineDelta =
      (after.dockerdRssBytes +
        after.containerdRssBytes -
        before.dockerdRssBytes -
        before.containerdRssBytes) /
      ids.length;
    const cg = perCg(after.cgroupUsageBytes);
    const perShim = (v: number | null) => (v === null ? null : v / after.shimsFound);
    const shim = perShim(after.shimAnonBytes);
    return {
      transport,
      containers: ids.length,
      method:
        'cgroup v1 memory.usage_in_bytes and memory.stat total_rss of each container; anonymous memory and PSS ' +
        "(smaps_rollup) of each container's containerd-shim; RSS growth of dockerd + containerd; MemAvailable drop",
      before,
      after,
      perContainer: {
        cgroupUsageBytes: cg,
        cgroupRssBytes: perCg(after.cgroupRssBytes),
        shimAnonBytes: shim,
        shimPssBytes: perShim(after.shimPssBytes),
        engineRssDeltaBytes: engineDelta,
        totalBytes: cg === null || shim === null ? null : cg + shim + Math.max(0, engineDelta),
        memAvailableDeltaBytes: (before.memAvailableBytes - after.memAvailableBytes) / ids.length,
      },
    };
  } finally {
    await host.close();
  }
}

// ------------------------------------------------------------------------------------------------ the pool's own work

export interface MicroResult {
  /** ConsoleLogger.log of the per-execution line, written to /dev/null (µs per call). */
  loggerLineUs: number;
  /** The same call with the 'log' level disabled (what the benchmark's pools run with), µs. */
  loggerDisabledUs: number;
  /** uuid v4 (one per execution), µs. */
  uuidUs: number;
}

/** Costs of the pool's per-execution bookkeeping that a run() pays in this process. */
export function measureMicro(iterations = 20_000): MicroResult {
  const line =
    `exec ${uuidv4()} container=cpool-bench-1a2b3c4d-17 exit=0 durationMs=43 queuedMs=0 ` +
    'stdout=6B stderr=0B';
  const time = (fn: () => void) => {
    for (let i = 0; i < Math.min(1000, iterations); i++) fn();
    const t0 = now();
    for (let i = 0; i < iterations; i++) fn();
    return ((now() - t0) * 1000) / iterations;
  };
  const fd = openSync('/dev/null', 'w');
  const write = process.stdout.write;
  let loggerLineUs: number;
  try {
    process.stdout.write = (chunk: string | Uint8Array) => {
      if (typeof chunk === 'string') writeSync(fd, chunk);
      else writeSync(fd, chunk);
      return true;
    };
    const logger = new ConsoleLogger('ContainerPool:bench');
    loggerLineUs = time(() => logger.log(line));
  } finally {
    process.stdout.write = write;
    closeSync(fd);
  }
  const disabled = new Logger('ContainerPool:bench');
  const levelsBefore = (Logger as unknown as { logLevels?: string[] }).logLevels;
  Logger.overrideLogger(['error']);
  let loggerDisabledUs: number;
  try {
    loggerDisabledUs = time(() => disabled.log(line));
  } finally {
    if (levelsBefore)
      Logger.overrideLogger(levelsBefore as Parameters<typeof Logger.overrideLogger>[0]);
  }
  const uuidUs = time(() => uuidv4());
  return { loggerLineUs, loggerDisabledUs, uuidUs };
}
