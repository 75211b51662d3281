/**
 * `npm run bench` (scripts/bench.sh runs this after making sure the engine and the image are there).
 *
 *   ts-node bench/run.ts [--quick] [--soak [--soak-runs N]] [--profiles] [--files] [--transports exec,runner]
 *                        [--sessions [--rounds N] [--gap-ms MIN-MAX] [--opens N]] [--outputs [--rounds N] [--opens N]]
 *                        [--out <dir>] [--image <ref>]
 *
 * Measures, on one engine and one image, in one run: A cold containers, B testcontainers-node, C the pool on
 * the exec transport, R the pool on the runner transport (at least 300 settled runs per snippet) and D a raw
 * exec into a running container, for a Python snippet and a shell echo; acquire(); sustained single-use
 * throughput, filling and memory per idle container, on both transports. Writes results.json, results.md and latency.svg
 * to the output folder (default bench/results; --quick: bench/results/tmp/quick, not committed) and prints the four-way
 * comparison, the ratios and the targets. Timing is reported, never asserted. `--soak` runs the soak instead
 * (bench/soak.ts: 10,000 single-use runs, memory, descriptors, handles, containers; soak.json/.md/.svg).
 */
import 'reflect-metadata';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import Dockerode from 'dockerode';
import { latencyChartSvg, type ChartPanel } from './chart';
import { BENCH_RUN_LABEL, benchPoolOptions, removeBenchContainers, rawRemove } from './engine';
import { analyzeFiles, filesConfig, filesSummary, runFilesBench, writeFiles } from './files';
import {
  analyzeOutputs,
  DATASCIENCE_IMAGE,
  outputsConfig,
  outputsSummary,
  runOutputsBench,
  writeOutputs,
} from './outputs';
import {
  analyzeSessions,
  parseGap,
  runSessionsBench,
  sessionsConfig,
  sessionsSummary,
  writeSessions,
} from './sessions';
import { startBenchPool } from './pool-host';
import { analyzeSoak, runSoak, soakConfig, soakSummary, writeSoak } from './soak';
import {
  analyzeProfiles,
  profilesConfig,
  profilesSummary,
  runProfilesBench,
  writeProfiles,
} from './profiles';
import {
  analyze,
  consoleSummary,
  markdown,
  toJson,
  type Analysis,
  type BenchConfig,
  type Environment,
  type RawResults,
} from './report';
import {
  SNIPPETS,
  measureAcquire,
  measureFill,
  measureMemory,
  measureMicro,
  measureThroughputBothOrders,
  runFourWay,
  runRunner,
  startFloorContainer,
  type BenchContext,
  type FillResult,
  type FourWayResult,
  type MemoryResult,
  type RunnerResult,
  type ThroughputResult,
} from './scenarios';
import type { TransportName } from '../src/container-pool/transport/transport.interface';

export const DEFAULT_IMAGE = process.env.POOL_IMAGE || 'container-pool-sandbox:bookworm';

/** The full benchmark: about 15 minutes on the 2-core reference machine. */
export function fullConfig(image = DEFAULT_IMAGE, transports?: TransportName[]): BenchConfig {
  return {
    mode: 'full',
    image,
    snippets: ['python', 'shell'],
    transports: transports ?? ['exec', 'runner'],
    fourWay: { rounds: 120, warmup: 5, testcontainers: 60, backToBack: 100 },
    runner: { rounds: 300, warmup: 5, dEvery: 2, backToBack: 100 },
    latencyPool: { size: 4, maxContainers: 16, maxConcurrentCreates: 2 },
    acquire: { rounds: 8, perRound: 16 },
    throughput: { levels: [1, 4, 16], warmupMs: 3000, windowMs: 10_000, maxConcurrentCreates: 4 },
    fill: { containers: 20, concurrencies: [2, 4], reps: 5 },
    memory: { containers: 20 },
  };
}

/** A smoke run of every part with a handful of samples (seconds): keeps the benchmark working, proves nothing. */
export function quickConfig(image = DEFAULT_IMAGE, transports?: TransportName[]): BenchConfig {
  return {
    mode: 'quick',
    image,
    snippets: ['python', 'shell'],
    transports: transports ?? ['exec', 'runner'],
    fourWay: { rounds: 4, warmup: 1, testcontainers: 2, backToBack: 4 },
    runner: { rounds: 6, warmup: 1, dEvery: 2, backToBack: 4 },
    latencyPool: { size: 2, maxContainers: 16, maxConcurrentCreates: 2 },
    acquire: { rounds: 1, perRound: 4 },
    throughput: { levels: [1, 4], warmupMs: 500, windowMs: 1500, maxConcurrentCreates: 4 },
    fill: { containers: 4, concurrencies: [2], reps: 1 },
    memory: { containers: 2 },
  };
}

export function newRunId(): string {
  return `${Date.now().toString(36)}${process.pid.toString(36)}`;
}

export interface RunOptions {
  /** Prefix of the pools' names; the tests pass a `test-…` name. */
  poolPrefix?: string;
  /** Extra labels for the containers created outside the pool (the tests add io.container-pool.test). */
  labels?: Record<string, string>;
  /** Id of the run (labels its containers); a fresh one by default. */
  runId?: string;
  log?: (line: string) => void;
  docker?: Dockerode;
}

async function describeEnvironment(docker: Dockerode): Promise<Environment> {
  const [version, info] = await Promise.all([docker.version(), docker.info()]);
  let testcontainers = '?';
  try {
    const pkg = JSON.parse(
      await readFile(
        join(__dirname, '..', 'node_modules', 'testcontainers', 'package.json'),
        'utf8',
      ),
    ) as { version: string };
    testcontainers = pkg.version;
  } catch {
    // reported as '?'
  }
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    kernel: release(),
    engine: `${(version as any).Platform?.Name || 'Docker Engine'} ${version.Version}`,
    engineApi: version.ApiVersion,
    cgroup: `v${info.CgroupVersion ?? '?'} (${info.CgroupDriver ?? '?'})`,
    storageDriver: info.Driver ?? '?',
    loadAverageAtStart: loadavg(),
    loadAverageAtEnd: [],
    testcontainers,
  };
}

/** Runs every part of the benchmark with `config`; removes everything it created, whatever happens. */
export async function runBench(config: BenchConfig, opts: RunOptions = {}): Promise<RawResults> {
  const docker = opts.docker ?? new Dockerode();
  const log = opts.log ?? ((line: string) => console.log(line));
  const runId = opts.runId ?? newRunId();
  let imageEnv: string[];
  try {
    imageEnv = (await docker.getImage(config.image).inspect()).Config?.Env ?? [];
  } catch (err) {
    throw new Error(
      `image ${config.image} is not on the engine (${(err as Error).message}); build it with ` +
        '`bash scripts/build-sandbox-image.sh` (npm run bench does this itself)',
    );
  }
  const ctx: BenchContext = {
    docker,
    image: config.image,
    runId,
    labels: { ...opts.labels, [BENCH_RUN_LABEL]: runId },
    poolPrefix: opts.poolPrefix ?? `bench-${runId}`,
    options: benchPoolOptions(config.image),
    imageEnv,
    log,
  };
  const startedAt = new Date();
  const t0 = performance.now();
  const environment = await describeEnvironment(docker);
  log(
    `bench (${config.mode}) on ${environment.engine}, ${environment.cpus} CPUs, load ${environment.loadAverageAtStart
      .map((v) => v.toFixed(2))
      .join(' ')}, image ${config.image}`,
  );
  try {
    log("micro: the pool's per-execution bookkeeping");
    const micro = measureMicro(config.mode === 'quick' ? 2000 : 20_000);

    log(
      `four-way latency: ${config.fourWay.rounds} rounds per snippet (+${config.fourWay.warmup} warm-up)`,
    );
    const fourWay: FourWayResult[] = [];
    const runner: RunnerResult[] = [];
    const withRunner = config.transports.includes('runner');
    const floor = await startFloorContainer(ctx);
    try {
      const host = await startBenchPool({
        name: `${ctx.poolPrefix}-lat`,
        image: config.image,
        transport: 'exec',
        ...config.latencyPool,
      });
      try {
        for (const key of config.snippets) {
          fourWay.push(await runFourWay(ctx, host, floor, SNIPPETS[key], config.fourWay));
        }
      } finally {
        await host.close();
      }
      if (withRunner) {
        log(
          `runner transport: ${config.runner.rounds} settled runs per snippet (+${config.runner.warmup} warm-up), ` +
            `a raw exec every ${config.runner.dEvery}`,
        );
        const runnerHost = await startBenchPool({
          name: `${ctx.poolPrefix}-run`,
          image: config.image,
          transport: 'runner',
          ...config.latencyPool,
        });
        try {
          for (const key of config.snippets) {
            runner.push(await runRunner(ctx, runnerHost, floor, SNIPPETS[key], config.runner));
          }
        } finally {
          await runnerHost.close();
        }
      }
    } finally {
      await rawRemove(docker, floor.id);
    }

    log(`acquire(): ${config.acquire.rounds} rounds of ${config.acquire.perRound}`);
    const acquire = await measureAcquire(ctx, config.acquire.rounds, config.acquire.perRound);

    const throughput: ThroughputResult[] = [];
    for (const c of config.throughput.levels) {
      log(
        `throughput at concurrency ${c} (raw then pool ${config.transports.join(', ')}, then the reverse)`,
      );
      throughput.push(
        await measureThroughputBothOrders(
          ctx,
          c,
          config.throughput.warmupMs,
          config.throughput.windowMs,
          config.throughput.maxConcurrentCreates,
          config.transports,
        ),
      );
    }

    const fill: FillResult[] = [];
    for (const c of config.fill.concurrencies) {
      log(`fill ${config.fill.containers} at concurrency ${c}`);
      fill.push(
        await measureFill(
          ctx,
          config.fill.containers,
          c,
          config.fill.reps,
          undefined,
          config.transports,
        ),
      );
    }

    log(`memory of ${config.memory.containers} idle containers (${config.transports.join(', ')})`);
    let memory: MemoryResult | null = null;
    let memoryRunner: MemoryResult | null = null;
    for (const t of config.transports) {
      const m = await measureMemory(ctx, config.memory.containers, t);
      if (t === 'runner') memoryRunner = m;
      else memory = m;
    }

    environment.loadAverageAtEnd = loadavg();
    return {
      runId,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      wallMs: performance.now() - t0,
      config,
      environment,
      fourWay,
      runner,
      acquire,
      throughput,
      fill,
      memory,
      memoryRunner,
      micro,
    };
  } finally {
    const left = await removeBenchContainers(docker, runId).catch(() => 0);
    if (left) log(`removed ${left} leftover bench container(s)`);
  }
}

const COLORS = {
  A: '#d62728',
  B: '#9467bd',
  C: '#2ca02c',
  Cb: '#98c98a',
  R: '#ff7f0e',
  Rb: '#ffbb78',
  D: '#1f77b4',
  Db: '#8fb8dc',
};

export function chartFor(raw: RawResults): string {
  const panels: ChartPanel[] = raw.fourWay.map((fw) => ({
    title: SNIPPETS[fw.snippet].label,
    series: [
      {
        label: 'A cold: create + start + exec',
        color: COLORS.A,
        samples: fw.cold.map((s) => s.latency),
      },
      {
        label: 'B testcontainers: start + exec',
        color: COLORS.B,
        samples: fw.testcontainers.map((s) => s.latency),
      },
      {
        label: 'C pool run(), settled (exec transport)',
        color: COLORS.C,
        samples: fw.pairs.map((p) => p.c),
      },
      {
        label: 'C pool run(), back to back (exec transport)',
        color: COLORS.Cb,
        samples: fw.backToBack.map((p) => p.c),
      },
      ...runnerSeries(raw, fw.snippet),
      {
        label: 'D exec into running container',
        color: COLORS.D,
        samples: fw.pairs.map((p) => p.d),
      },
      {
        label: 'D, back to back',
        color: COLORS.Db,
        samples: fw.backToBack.map((p) => p.d),
      },
    ],
  }));
  return latencyChartSvg(
    panels,
    `${raw.environment.engine}, ${raw.environment.cpus} CPUs, ${raw.startedAt}. box p25-p75, thick line p50, ` +
      'whiskers p1-p99, dots every sample',
  );
}

function runnerSeries(raw: RawResults, snippet: FourWayResult['snippet']): ChartPanel['series'] {
  const r = (raw.runner ?? []).find((x) => x.snippet === snippet);
  if (!r) return [];
  return [
    { label: 'R pool run(), settled (runner transport)', color: COLORS.R, samples: r.settled },
    {
      label: 'R pool run(), back to back (runner transport)',
      color: COLORS.Rb,
      samples: r.backToBack.map((p) => p.c),
    },
  ];
}

/** Writes results.json, results.md and latency.svg; returns their paths. */
export async function writeResults(
  outDir: string,
  raw: RawResults,
  analysis: Analysis,
): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const files = {
    json: join(outDir, 'results.json'),
    md: join(outDir, 'results.md'),
    svg: join(outDir, 'latency.svg'),
  };
  await writeFile(files.json, JSON.stringify(toJson(raw, analysis), null, 2) + '\n');
  await writeFile(files.md, markdown(raw, analysis));
  await writeFile(files.svg, chartFor(raw));
  return Object.values(files);
}

const USAGE =
  'usage: npm run bench [-- --quick] [-- --soak [--soak-runs N]] [-- --profiles] [-- --files] ' +
  '[-- --sessions [--rounds N] [--gap-ms MIN-MAX] [--opens N]] [-- --outputs [--rounds N] [--opens N]] ' +
  '[-- --transports exec,runner] [-- --out <dir>] [-- --image <ref>]';

interface Args {
  quick: boolean;
  /** The transports of the pool's measurements (default both; `exec` alone for an image without Python). */
  transports?: TransportName[];
  soak: boolean;
  soakRuns?: number;
  profiles?: boolean;
  files?: boolean;
  sessions?: boolean;
  outputs?: boolean;
  /** --sessions: measured calls, idle gap range, openSession samples (--outputs: plot rounds, sessions). */
  rounds?: number;
  gapMs?: [number, number];
  opens?: number;
  out?: string;
  image?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, soak: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--soak') args.soak = true;
    else if (a === '--profiles') args.profiles = true;
    else if (a === '--files') args.files = true;
    else if (a === '--sessions') args.sessions = true;
    else if (a === '--outputs') args.outputs = true;
    else if (a === '--rounds' || a === '--opens') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`${a} needs a positive whole number (${USAGE})`);
      if (a === '--rounds') args.rounds = n;
      else args.opens = n;
    } else if (a === '--gap-ms') args.gapMs = parseGap(argv[++i] ?? '');
    else if (a === '--soak-runs') {
      args.soak = true;
      args.soakRuns = Number(argv[++i]);
      if (!Number.isInteger(args.soakRuns) || args.soakRuns < 1) {
        throw new Error(`--soak-runs needs a positive whole number (${USAGE})`);
      }
    } else if (a === '--out') args.out = argv[++i];
    else if (a === '--image') args.image = argv[++i];
    else if (a === '--transports') {
      const list = (argv[++i] ?? '').split(',').filter(Boolean);
      if (!list.length || list.some((t) => t !== 'exec' && t !== 'runner')) {
        throw new Error(`--transports takes exec, runner or exec,runner (${USAGE})`);
      }
      args.transports = [...new Set(list)] as TransportName[];
    } else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (${USAGE})`);
  }
  return args;
}

/**
 * The soak (bench/soak.ts). The full 10,000 runs write to bench/results (committed); a shorter --soak-runs check
 * to bench/results/tmp/soak (ignored by git).
 */
async function soakMain(args: Args, docker: Dockerode, runId: string): Promise<void> {
  const config = soakConfig(args.image ?? DEFAULT_IMAGE, args.soakRuns);
  // One transport per soak: exec unless `--transports runner` names the runner alone.
  const transport: TransportName = args.transports?.length === 1 ? args.transports[0] : 'exec';
  config.pool = { ...config.pool, transport };
  const full = config.runs === soakConfig(config.image).runs;
  const dir = transport === 'runner' ? 'soak-runner' : '';
  const outDir = resolve(
    args.out ?? join(__dirname, 'results', full ? dir : join('tmp/soak', dir)),
  );
  const raw = await runSoak(config, { docker, runId });
  const analysis = analyzeSoak(raw);
  const files = await writeSoak(outDir, raw, analysis);
  console.log(soakSummary(raw, analysis));
  console.log(`wrote ${files.join(', ')}`);
}

/**
 * The profiles benchmark (bench/profiles.ts): B's acquires during a burst on A at maxContainersTotal. The full
 * run writes to bench/results (committed); with --quick to bench/results/tmp/profiles.
 */
async function profilesMain(args: Args, docker: Dockerode, runId: string): Promise<void> {
  const config = args.quick
    ? profilesConfig(args.image ?? DEFAULT_IMAGE, 20, 10)
    : profilesConfig(args.image ?? DEFAULT_IMAGE);
  const outDir = resolve(args.out ?? join(__dirname, 'results', args.quick ? 'tmp/profiles' : ''));
  const raw = await runProfilesBench(config, { docker, runId });
  const analysis = analyzeProfiles(raw);
  const files = await writeProfiles(outDir, raw, analysis);
  console.log(profilesSummary(raw, analysis));
  console.log(`wrote ${files.join(', ')}`);
}

/**
 * The files benchmark (bench/files.ts): 10 MiB written then read back, on each transport (--transports, default
 * exec and runner). The full run writes to bench/results (committed); with --quick (3 samples) to
 * bench/results/tmp/files.
 */
async function filesMain(args: Args, docker: Dockerode, runId: string): Promise<void> {
  const outDir = resolve(args.out ?? join(__dirname, 'results', args.quick ? 'tmp/files' : ''));
  const runs = [];
  for (const transport of args.transports ?? (['exec', 'runner'] as TransportName[])) {
    const config = filesConfig(args.image ?? DEFAULT_IMAGE, args.quick ? 3 : 10, transport);
    const raw = await runFilesBench(config, { docker, runId });
    runs.push({ raw, analysis: analyzeFiles(raw) });
  }
  const files = await writeFiles(outDir, runs);
  console.log(filesSummary(runs));
  console.log(`wrote ${files.join(', ')}`);
}

/**
 * The sessions benchmark (bench/sessions.ts): runCode('x += 1') with idle gaps against the raw exec floor of the
 * same run, and openSession(). Writes to bench/results/tmp/sessions unless --out names a folder (the committed
 * run: --out bench/results).
 */
async function sessionsMain(args: Args, docker: Dockerode, runId: string): Promise<void> {
  const outDir = resolve(args.out ?? join(__dirname, 'results', 'tmp/sessions'));
  const config = sessionsConfig(args.image ?? DEFAULT_IMAGE, {
    ...(args.rounds !== undefined && { rounds: args.rounds }),
    ...(args.gapMs !== undefined && { gapMs: args.gapMs }),
    ...(args.opens !== undefined && { opens: args.opens }),
  });
  const raw = await runSessionsBench(config, { docker, runId });
  const analysis = analyzeSessions(raw);
  const files = await writeSessions(outDir, raw, analysis);
  console.log(sessionsSummary(raw, analysis));
  console.log(`wrote ${files.join(', ')}`);
}

/**
 * The rich-outputs benchmark (bench/outputs.ts): a warm data-science session's first call against a cold import
 * in a fresh container, plot and DataFrame round trips, the image's size. Writes to bench/results/tmp/outputs
 * unless --out names a folder (the committed run: --out bench/results).
 */
async function outputsMain(args: Args, docker: Dockerode, runId: string): Promise<void> {
  const outDir = resolve(args.out ?? join(__dirname, 'results', 'tmp/outputs'));
  const config = outputsConfig(args.image ?? DATASCIENCE_IMAGE, {
    ...(args.rounds !== undefined && { rounds: args.rounds }),
    ...(args.opens !== undefined && { opens: args.opens }),
  });
  const raw = await runOutputsBench(config, { docker, runId });
  const analysis = analyzeOutputs(raw);
  const files = await writeOutputs(outDir, raw, analysis);
  console.log(outputsSummary(raw, analysis));
  console.log(`wrote ${files.join(', ')}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const docker = new Dockerode();
  const runId = newRunId();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`\n${signal}: removing the benchmark's containers, then exiting`);
    removeBenchContainers(docker, runId)
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (args.soak) return soakMain(args, docker, runId);
  if (args.profiles) return profilesMain(args, docker, runId);
  if (args.files) return filesMain(args, docker, runId);
  if (args.sessions) return sessionsMain(args, docker, runId);
  if (args.outputs) return outputsMain(args, docker, runId);
  const config = args.quick
    ? quickConfig(args.image, args.transports)
    : fullConfig(args.image, args.transports);
  const outDir = resolve(args.out ?? join(__dirname, 'results', args.quick ? 'tmp/quick' : ''));
  const raw = await runBench(config, { docker, runId });
  const analysis = analyze(raw);
  const files = await writeResults(outDir, raw, analysis);
  console.log(consoleSummary(analysis));
  console.log('');
  console.log(`wall time ${(raw.wallMs / 1000).toFixed(0)} s; wrote ${files.join(', ')}`);
  if (config.mode === 'quick')
    console.log('(quick mode: a smoke run, too few samples for any conclusion)');
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  });
}
