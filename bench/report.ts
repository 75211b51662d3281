/** Turns the raw samples into summaries, ratios, target checks, a markdown report and console text. */
import type {
  AcquireResult,
  FillResult,
  FourWayPlan,
  FourWayResult,
  MemoryResult,
  MicroResult,
  RunnerPlan,
  RunnerResult,
  SnippetKey,
  ThroughputResult,
} from './scenarios';
import type { TransportName } from '../src/container-pool/transport/transport.interface';
import { median, pairedDifference, round, roundSummary, summarize, type Summary } from './stats';

export interface BenchConfig {
  mode: 'full' | 'quick';
  image: string;
  snippets: SnippetKey[];
  /** Transports of the pool's throughput, fill and memory measurements; `runner` adds R. C is always exec. */
  transports: TransportName[];
  fourWay: FourWayPlan;
  /** R: the pool on the runner transport (same pool settings as C). */
  runner: RunnerPlan;
  /** The pool C (and R) runs through. */
  latencyPool: { size: number; maxContainers: number; maxConcurrentCreates: number };
  acquire: { rounds: number; perRound: number };
  throughput: {
    levels: number[];
    warmupMs: number;
    windowMs: number;
    maxConcurrentCreates: number;
  };
  fill: { containers: number; concurrencies: number[]; reps: number };
  memory: { containers: number };
}

export interface Environment {
  node: string;
  cpus: number;
  cpuModel: string;
  kernel: string;
  engine: string;
  engineApi: string;
  cgroup: string;
  storageDriver: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  testcontainers: string;
}

export interface RawResults {
  /** Labels (io.container-pool.bench-run) every raw container of the run. */
  runId: string;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  config: BenchConfig;
  environment: Environment;
  fourWay: FourWayResult[];
  /** R per snippet (empty without the runner transport). */
  runner: RunnerResult[];
  acquire: AcquireResult;
  throughput: ThroughputResult[];
  fill: FillResult[];
  /** Idle containers of the exec transport. */
  memory: MemoryResult | null;
  /** Idle containers of the runner transport. */
  memoryRunner: MemoryResult | null;
  micro: MicroResult;
}

export interface RunnerAnalysis {
  snippet: SnippetKey;
  /** Settled run() on the runner transport. */
  R: Summary;
  /** Settled raw exec of the same snippet, in the same minutes (the floor of the runner's ratios). */
  D: Summary;
  Rb2b: Summary;
  Db2b: Summary;
  /** The exec transport's C and the cold start A of the four-way run, for the side-by-side view. */
  Cexec: Summary | null;
  A: Summary | null;
  firstRunMs: number;
  /** Samples above 0.2 x D p50, and the largest. */
  slowCount: number;
  ratios: {
    p50OverD: number;
    p95OverD: number;
    p99OverD: number;
    /** R p50 against the four-way run's D p50 (a cross-check of the floor). */
    p50OverFourWayD: number;
    RoverCexec: number;
    RoverA: number;
  };
}

export interface TargetCheck {
  id: string;
  target: string;
  threshold: number;
  measured: number;
  unit: string;
  pass: boolean;
  note?: string;
}

export interface SnippetAnalysis {
  snippet: SnippetKey;
  /** create + start + exec (A), start + exec (B), run() (C), exec (D), settled. */
  A: Summary;
  Aremove: Summary;
  B: Summary;
  Bstop: Summary;
  Bcycle: Summary;
  C: Summary;
  D: Summary;
  Cb2b: Summary;
  Db2b: Summary;
  /** C' (run({ cmd }) of the same program), settled; n 0 when the snippet has none. */
  Ccmd: Summary;
  /** C' - D of the same round. */
  pairedCmd: ReturnType<typeof pairedDifference>;
  paired: ReturnType<typeof pairedDifference>;
  pairedBackToBack: ReturnType<typeof pairedDifference>;
  /** Where the time goes. */
  phases: {
    coldCreate: Summary;
    coldStart: Summary;
    coldExec: Summary;
    coldRemove: Summary;
    floorExecCreate: Summary;
    floorExecStart: Summary;
    floorStream: Summary;
    floorInspect: Summary;
    floorExtraInspects: number;
    poolDriverExec: Summary;
    /** run() minus the driver's exec: acquire, request checks, result, release, bookkeeping. */
    poolOwn: Summary;
    poolOwnBackToBack: Summary;
    tcStart: Summary;
    tcExec: Summary;
  };
  ratios: {
    CoverA: number;
    DoverA: number;
    BoverA: number;
    CoverB: number;
    CoverD: number;
    warmColdThreshold: number;
  };
}

export interface Analysis {
  snippets: SnippetAnalysis[];
  runner: RunnerAnalysis[];
  acquire: { all: Summary; firstOfRound: Summary };
  throughput: Array<{
    concurrency: number;
    rawPerSecond: number;
    poolPerSecond: number;
    ratio: number;
    rawRuns: number;
    poolRuns: number;
    rawLatency: Summary;
    poolLatency: Summary;
    rawNodeCpuMsPerRun: number;
    poolNodeCpuMsPerRun: number;
    /** The runner transport's pool (NaN / n 0 when not measured). */
    runnerPerSecond: number;
    runnerRatio: number;
    runnerRuns: number;
    runnerLatency: Summary;
    runnerNodeCpuMsPerRun: number;
    poolConfig: ThroughputResult['poolConfig'];
  }>;
  fill: Array<{
    containers: number;
    concurrency: number;
    rawMedianMs: number;
    poolMedianMs: number;
    rawMs: number[];
    poolMs: number[];
    /**
     * Pool fill rate as a share of the raw rate: the median over repetitions of raw time / pool time (each
     * repetition runs both, back to back, so that the machine's drift cancels).
     */
    ratio: number;
    /** The same from the medians: raw median / pool median. */
    ratioOfMedians: number;
    /** The runner transport's pool: its fill times, median, and rate ratio to the raw (NaN when not measured). */
    runnerMs: number[];
    runnerMedianMs: number;
    runnerRatio: number;
  }>;
  memory: MemoryResult | null;
  memoryRunner: MemoryResult | null;
  micro: MicroResult;
  targets: TargetCheck[];
}

const pick = <T>(rows: T[], f: (r: T) => number) => summarize(rows.map(f));

export function analyze(raw: RawResults): Analysis {
  const snippets = raw.fourWay.map((fw): SnippetAnalysis => {
    const A = pick(fw.cold, (s) => s.latency);
    const B = pick(fw.testcontainers, (s) => s.latency);
    const C = pick(fw.pairs, (p) => p.c);
    const D = pick(fw.pairs, (p) => p.d);
    const DoverA = D.p50 / A.p50;
    return {
      snippet: fw.snippet,
      A,
      Aremove: pick(fw.cold, (s) => s.remove),
      B,
      Bstop: pick(fw.testcontainers, (s) => s.stop),
      Bcycle: pick(fw.testcontainers, (s) => s.latency + s.stop),
      C,
      D,
      Cb2b: pick(fw.backToBack, (p) => p.c),
      Db2b: pick(fw.backToBack, (p) => p.d),
      Ccmd: summarize(fw.cmdVariant),
      pairedCmd: pairedDifference(
        fw.cmdVariant,
        fw.pairs.map((p) => p.d),
      ),
      paired: pairedDifference(
        fw.pairs.map((p) => p.c),
        fw.pairs.map((p) => p.d),
      ),
      pairedBackToBack: pairedDifference(
        fw.backToBack.map((p) => p.c),
        fw.backToBack.map((p) => p.d),
      ),
      phases: {
        coldCreate: pick(fw.cold, (s) => s.create),
        coldStart: pick(fw.cold, (s) => s.start),
        coldExec: pick(fw.cold, (s) => s.exec),
        coldRemove: pick(fw.cold, (s) => s.remove),
        floorExecCreate: pick(fw.pairs, (p) => p.dPhases.execCreate),
        floorExecStart: pick(fw.pairs, (p) => p.dPhases.execStart),
        floorStream: pick(fw.pairs, (p) => p.dPhases.stream),
        floorInspect: pick(fw.pairs, (p) => p.dPhases.inspect),
        floorExtraInspects: fw.pairs.reduce((a, p) => a + p.dExtraInspects, 0),
        poolDriverExec: pick(fw.pairs, (p) => p.cDriverExec),
        poolOwn: pick(fw.pairs, (p) => p.c - p.cDriverExec),
        poolOwnBackToBack: pick(fw.backToBack, (p) => p.c - p.cDriverExec),
        tcStart: pick(fw.testcontainers, (s) => s.start),
        tcExec: pick(fw.testcontainers, (s) => s.exec),
      },
      ratios: {
        CoverA: C.p50 / A.p50,
        DoverA,
        BoverA: B.p50 / A.p50,
        CoverB: C.p50 / B.p50,
        CoverD: C.p50 / D.p50,
        warmColdThreshold: Math.max(0.4, DoverA + 0.05),
      },
    };
  });

  const runner = (raw.runner ?? []).map((r): RunnerAnalysis => {
    const R = summarize(r.settled);
    const D = summarize(r.floor);
    const fw = snippets.find((x) => x.snippet === r.snippet);
    return {
      snippet: r.snippet,
      R,
      D,
      Rb2b: pick(r.backToBack, (p) => p.c),
      Db2b: pick(r.backToBack, (p) => p.d),
      Cexec: fw?.C ?? null,
      A: fw?.A ?? null,
      firstRunMs: r.firstRunMs,
      slowCount: r.settled.filter((v) => v > 0.2 * D.p50).length,
      ratios: {
        p50OverD: R.p50 / D.p50,
        p95OverD: R.p95 / D.p50,
        p99OverD: R.p99 / D.p50,
        p50OverFourWayD: fw ? R.p50 / fw.D.p50 : NaN,
        RoverCexec: fw ? R.p50 / fw.C.p50 : NaN,
        RoverA: fw ? R.p50 / fw.A.p50 : NaN,
      },
    };
  });

  const throughput = raw.throughput.map((t) => ({
    concurrency: t.concurrency,
    rawPerSecond: t.raw.perSecond,
    poolPerSecond: t.pool.perSecond,
    ratio: t.pool.perSecond / t.raw.perSecond,
    rawRuns: t.raw.runs,
    poolRuns: t.pool.runs,
    rawLatency: summarize(t.raw.latencies),
    poolLatency: summarize(t.pool.latencies),
    rawNodeCpuMsPerRun: t.raw.nodeCpuMsPerRun,
    poolNodeCpuMsPerRun: t.pool.nodeCpuMsPerRun,
    runnerPerSecond: t.runner?.perSecond ?? NaN,
    runnerRatio: t.runner ? t.runner.perSecond / t.raw.perSecond : NaN,
    runnerRuns: t.runner?.runs ?? 0,
    runnerLatency: summarize(t.runner?.latencies ?? []),
    runnerNodeCpuMsPerRun: t.runner?.nodeCpuMsPerRun ?? NaN,
    poolConfig: t.poolConfig,
  }));

  const fill = raw.fill.map((f) => {
    const rawMedianMs = median(f.rawMs);
    const poolMedianMs = median(f.poolMs);
    return {
      containers: f.containers,
      concurrency: f.concurrency,
      rawMedianMs,
      poolMedianMs,
      rawMs: f.rawMs,
      poolMs: f.poolMs,
      ratio: median(f.rawMs.map((r, i) => r / f.poolMs[i])),
      ratioOfMedians: rawMedianMs / poolMedianMs,
      runnerMs: f.runnerMs ?? [],
      runnerMedianMs: median(f.runnerMs ?? []),
      runnerRatio: f.runnerMs?.length ? median(f.rawMs.map((r, i) => r / f.runnerMs[i])) : NaN,
    };
  });

  const acquire = {
    all: summarize(raw.acquire.samples),
    firstOfRound: summarize(raw.acquire.firstOfRound),
  };

  const targets: TargetCheck[] = [];
  targets.push({
    id: 'acquire-p50',
    target: 'acquire() of an idle container: p50 at most 1 ms',
    threshold: 1,
    measured: acquire.all.p50,
    unit: 'ms',
    pass: acquire.all.p50 <= 1,
  });
  for (const s of snippets) {
    targets.push({
      id: `overhead-${s.snippet}`,
      target: `pool overhead at light load (${s.snippet}): paired median of C - D at most 5 ms`,
      threshold: 5,
      measured: s.paired.median,
      unit: 'ms',
      pass: s.paired.median <= 5,
      note: `back to back: ${fmt(s.pairedBackToBack.median)} ms`,
    });
  }
  for (const s of snippets) {
    targets.push({
      id: `warm-vs-cold-${s.snippet}`,
      target: `warm against cold (${s.snippet}): C p50 at most max(0.4, D/A + 0.05) x A p50`,
      threshold: s.ratios.warmColdThreshold,
      measured: s.ratios.CoverA,
      unit: 'x A p50',
      pass: s.ratios.CoverA <= s.ratios.warmColdThreshold,
      note: `D/A = ${fmt(s.ratios.DoverA, 3)}`,
    });
  }
  const RUNNER_TARGETS: Record<SnippetKey, { p50: number; p99?: number; what: string }> = {
    python: { p50: 0.1, p99: 0.2, what: 'run({ code }) of the Python snippet' },
    shell: { p50: 0.12, what: "run({ cmd: ['sh', '-c', 'echo hello'] })" },
  };
  for (const r of runner) {
    const t = RUNNER_TARGETS[r.snippet];
    const note = `R p50 ${fmt(r.R.p50, 2)} ms, p99 ${fmt(r.R.p99, 2)} ms; D p50 ${fmt(r.D.p50, 1)} ms; n ${r.R.n}`;
    targets.push({
      id: `runner-${r.snippet}-p50`,
      target: `runner transport, settled (${t.what}): p50 at most ${t.p50} x the raw exec p50`,
      threshold: t.p50,
      measured: r.ratios.p50OverD,
      unit: 'x D p50',
      pass: r.ratios.p50OverD <= t.p50,
      note,
    });
    if (t.p99 !== undefined) {
      targets.push({
        id: `runner-${r.snippet}-p99`,
        target: `runner transport, settled (${t.what}): p99 at most ${t.p99} x the raw exec p50`,
        threshold: t.p99,
        measured: r.ratios.p99OverD,
        unit: 'x D p50',
        pass: r.ratios.p99OverD <= t.p99,
        note,
      });
    }
  }
  for (const t of throughput.filter((x) => x.concurrency >= 4)) {
    targets.push({
      id: `throughput-c${t.concurrency}`,
      target: `sustained single-use throughput at concurrency ${t.concurrency}: at least 85% of the raw cycle`,
      threshold: 0.85,
      measured: t.ratio,
      unit: 'x raw',
      pass: t.ratio >= 0.85,
      note: `${fmt(t.poolPerSecond)} vs ${fmt(t.rawPerSecond)} runs/s`,
    });
  }
  for (const t of throughput.filter((x) => x.concurrency >= 4 && x.runnerRuns > 0)) {
    targets.push({
      id: `throughput-runner-c${t.concurrency}`,
      target: `sustained single-use throughput at concurrency ${t.concurrency}, runner transport: at least 85% of the raw cycle`,
      threshold: 0.85,
      measured: t.runnerRatio,
      unit: 'x raw',
      pass: t.runnerRatio >= 0.85,
      note: `${fmt(t.runnerPerSecond)} vs ${fmt(t.rawPerSecond)} runs/s`,
    });
  }
  for (const f of fill) {
    targets.push({
      id: `fill-${f.containers}-c${f.concurrency}`,
      target: `filling ${f.containers} containers at concurrency ${f.concurrency}: at least 85% of raw create+start`,
      threshold: 0.85,
      measured: f.ratio,
      unit: 'x raw rate',
      pass: f.ratio >= 0.85,
      note: `pool ${fmt(f.poolMedianMs, 0)} ms vs raw ${fmt(f.rawMedianMs, 0)} ms`,
    });
  }
  for (const f of fill.filter((x) => x.runnerMs.length)) {
    targets.push({
      id: `fill-runner-${f.containers}-c${f.concurrency}`,
      target: `filling ${f.containers} containers at concurrency ${f.concurrency}, runner transport (idle = runner up): at least 85% of raw create+start`,
      threshold: 0.85,
      measured: f.runnerRatio,
      unit: 'x raw rate',
      pass: f.runnerRatio >= 0.85,
      note: `pool ${fmt(f.runnerMedianMs, 0)} ms vs raw ${fmt(f.rawMedianMs, 0)} ms`,
    });
  }
  return {
    snippets,
    runner,
    acquire,
    throughput,
    fill,
    memory: raw.memory,
    memoryRunner: raw.memoryRunner ?? null,
    micro: raw.micro,
    targets,
  };
}

export function fmt(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  return v.toFixed(digits);
}

const MiB = 1024 * 1024;
const mib = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? '-' : (v / MiB).toFixed(2);

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const LABELS: Record<SnippetKey, string> = { python: 'Python snippet', shell: 'shell echo' };

function fourWayRows(s: SnippetAnalysis): string[][] {
  const row = (name: string, x: Summary, vsA = true) => [
    name,
    String(x.n),
    fmt(x.p50),
    fmt(x.p95),
    fmt(x.p99),
    fmt(x.mean),
    vsA ? fmt(x.p50 / s.A.p50, 2) : '',
  ];
  return [
    row('A cold: create + start + exec', s.A),
    row('A: the remove that follows', s.Aremove, false),
    row('B testcontainers: start + exec', s.B),
    row('B: the stop (kill + remove) that follows', s.Bstop, false),
    row('C pool run(), refill settled', s.C),
    row('C pool run(), back to back (consecutive runs)', s.Cb2b),
    ...(s.Ccmd.n ? [row("C' pool run({ cmd }) of the same program, settled", s.Ccmd)] : []),
    row('D floor: exec into a running container', s.D),
    row('D floor, back to back (consecutive execs)', s.Db2b),
  ];
}

function runnerRows(r: RunnerAnalysis): string[][] {
  const row = (name: string, x: Summary | null) =>
    x
      ? [
          name,
          String(x.n),
          fmt(x.p50, 2),
          fmt(x.p95, 2),
          fmt(x.p99, 2),
          fmt(x.max, 1),
          fmt(x.p50 / r.D.p50, 3),
        ]
      : [name, '0', '-', '-', '-', '-', '-'];
  return [
    row('R pool run(), runner transport, refill settled', r.R),
    row('R pool run(), runner transport, back to back', r.Rb2b),
    row('C pool run(), exec transport, refill settled (four-way)', r.Cexec),
    row('D floor: raw exec into a running container, settled', r.D),
    row('D floor, back to back', r.Db2b),
    row('A cold: create + start + exec (four-way)', r.A),
  ];
}

/** Runner / exec of the idle memory per container, when both were measured. */
export function memoryRatio(a: Analysis): { cgroup: number; rss: number; total: number } | null {
  const e = a.memory?.perContainer;
  const r = a.memoryRunner?.perContainer;
  if (!e || !r) return null;
  const q = (x: number | null, y: number | null) => (x === null || y === null ? NaN : x / y);
  return {
    cgroup: q(r.cgroupUsageBytes, e.cgroupUsageBytes),
    rss: q(r.cgroupRssBytes, e.cgroupRssBytes),
    total: q(r.totalBytes, e.totalBytes),
  };
}

export function markdown(raw: RawResults, a: Analysis): string {
  const e = raw.environment;
  const out: string[] = [];
  out.push(`# container-pool benchmark (${raw.config.mode})`);
  out.push('');
  out.push(
    `${raw.startedAt}, wall time ${fmt(raw.wallMs / 1000, 0)} s. ${e.engine} (API ${e.engineApi}), ` +
      `${e.storageDriver}, cgroup ${e.cgroup}; ${e.cpus} x ${e.cpuModel}; kernel ${e.kernel}; Node ${e.node}; ` +
      `testcontainers ${e.testcontainers}. Image \`${raw.config.image}\`. Load average at start ` +
      `${e.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')}, at end ${e.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' ')}.`,
  );
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(
    table(
      ['target', 'threshold', 'measured', 'pass', 'note'],
      a.targets.map((t) => [
        t.target,
        `${fmt(t.threshold, 2)} ${t.unit}`,
        `${fmt(t.measured, t.unit === 'ms' ? 2 : 3)} ${t.unit}`,
        t.pass ? 'yes' : '**NO**',
        t.note ?? '',
      ]),
    ),
  );
  for (const s of a.snippets) {
    out.push('');
    out.push(`## Latency, ${LABELS[s.snippet]} (ms)`);
    out.push('');
    out.push(table(['method', 'n', 'p50', 'p95', 'p99', 'mean', 'p50 / A p50'], fourWayRows(s)));
    out.push('');
    out.push(
      `Paired C - D (settled, alternating order): median ${fmt(s.paired.median, 2)} ms ` +
        `(95% CI ${fmt(s.paired.ci95[0], 2)} to ${fmt(s.paired.ci95[1], 2)}, n ${s.paired.n}); back to back: ` +
        `median ${fmt(s.pairedBackToBack.median, 2)} ms (95% CI ${fmt(s.pairedBackToBack.ci95[0], 2)} to ` +
        `${fmt(s.pairedBackToBack.ci95[1], 2)}, n ${s.pairedBackToBack.n}).`,
    );
    if (s.Ccmd.n) {
      out.push(
        `C' - D (the same program as run({ cmd }), no code framing): median ${fmt(s.pairedCmd.median, 2)} ms ` +
          `(95% CI ${fmt(s.pairedCmd.ci95[0], 2)} to ${fmt(s.pairedCmd.ci95[1], 2)}); so run({ code })'s framing ` +
          `costs about ${fmt(s.paired.median - s.pairedCmd.median, 2)} ms.`,
      );
    }
    out.push(
      `Ratios of p50: C/A ${fmt(s.ratios.CoverA, 3)}, D/A ${fmt(s.ratios.DoverA, 3)}, B/A ` +
        `${fmt(s.ratios.BoverA, 3)}, C/B ${fmt(s.ratios.CoverB, 3)}, C/D ${fmt(s.ratios.CoverD, 3)}.`,
    );
  }
  for (const r of a.runner) {
    out.push('');
    out.push(`## Runner transport, ${LABELS[r.snippet]} (ms)`);
    out.push('');
    out.push(table(['method', 'n', 'p50', 'p95', 'p99', 'max', 'p50 / D p50'], runnerRows(r)));
    out.push('');
    out.push(
      `R against the raw exec of the same snippet in the same minutes (D, a settled exec every ` +
        `${raw.config.runner.dEvery} runner runs): p50 ${fmt(r.ratios.p50OverD, 3)}x, p95 ${fmt(r.ratios.p95OverD, 3)}x, ` +
        `p99 ${fmt(r.ratios.p99OverD, 3)}x the D p50; against the four-way D p50 ${fmt(r.ratios.p50OverFourWayD, 3)}x. ` +
        `R p50 is ${fmt(r.ratios.RoverCexec, 3)}x the exec transport's C p50 and ${fmt(r.ratios.RoverA, 3)}x the cold ` +
        `start's p50. ${r.slowCount} of ${r.R.n} runs took more than 0.2x the D p50; the pool's very first run ` +
        `(warm-up, not kept) took ${fmt(r.firstRunMs, 1)} ms.`,
    );
  }
  out.push('');
  out.push('## Where the time goes (p50 / p95, ms)');
  out.push('');
  const ph = (x: Summary) => `${fmt(x.p50)} / ${fmt(x.p95)}`;
  out.push(
    table(
      ['part', ...a.snippets.map((s) => LABELS[s.snippet])],
      [
        ['A: createContainer', ...a.snippets.map((s) => ph(s.phases.coldCreate))],
        ['A: start', ...a.snippets.map((s) => ph(s.phases.coldStart))],
        [
          'A: exec (create, start, stream, inspect)',
          ...a.snippets.map((s) => ph(s.phases.coldExec)),
        ],
        ['A: remove({ force: true })', ...a.snippets.map((s) => ph(s.phases.coldRemove))],
        ['B: GenericContainer.start()', ...a.snippets.map((s) => ph(s.phases.tcStart))],
        ['B: exec', ...a.snippets.map((s) => ph(s.phases.tcExec))],
        ['D: exec create', ...a.snippets.map((s) => ph(s.phases.floorExecCreate))],
        ['D: exec start', ...a.snippets.map((s) => ph(s.phases.floorExecStart))],
        ['D: output stream until its end', ...a.snippets.map((s) => ph(s.phases.floorStream))],
        ['D: exec inspect (exit code)', ...a.snippets.map((s) => ph(s.phases.floorInspect))],
        [
          'C: driver exec (engine part of run())',
          ...a.snippets.map((s) => ph(s.phases.poolDriverExec)),
        ],
        [
          "C: the pool's own time (run() - driver exec), settled",
          ...a.snippets.map((s) => ph(s.phases.poolOwn)),
        ],
        [
          'C: run() - driver exec, back to back (includes waiting for a refill)',
          ...a.snippets.map((s) => ph(s.phases.poolOwnBackToBack)),
        ],
      ],
    ),
  );
  out.push('');
  out.push('## acquire() of an idle container (ms)');
  out.push('');
  out.push(
    table(
      ['samples', 'n', 'p50', 'p95', 'p99', 'max'],
      [
        ['all', a.acquire.all],
        ['first of each round (pool full and quiet)', a.acquire.firstOfRound],
      ].map(([name, x]) => {
        const s = x as Summary;
        return [
          name as string,
          String(s.n),
          fmt(s.p50, 3),
          fmt(s.p95, 3),
          fmt(s.p99, 3),
          fmt(s.max, 3),
        ];
      }),
    ),
  );
  out.push('');
  out.push('## Sustained single-use throughput, shell echo (runs/s)');
  out.push('');
  out.push(
    table(
      [
        'concurrency',
        'raw cycle',
        'pool exec',
        'exec / raw',
        'pool runner',
        'runner / raw',
        'raw p50 ms',
        'exec p50 ms',
        'runner p50 ms',
        'node CPU ms/run raw / exec / runner',
        'pool size / max / creates',
      ],
      a.throughput.map((t) => [
        String(t.concurrency),
        fmt(t.rawPerSecond, 2),
        fmt(t.poolPerSecond, 2),
        fmt(t.ratio, 3),
        fmt(t.runnerPerSecond, 2),
        fmt(t.runnerRatio, 3),
        fmt(t.rawLatency.p50),
        fmt(t.poolLatency.p50),
        fmt(t.runnerLatency.p50),
        `${fmt(t.rawNodeCpuMsPerRun, 2)} / ${fmt(t.poolNodeCpuMsPerRun, 2)} / ${fmt(t.runnerNodeCpuMsPerRun, 2)}`,
        `${t.poolConfig.size} / ${t.poolConfig.maxContainers} / ${t.poolConfig.maxConcurrentCreates}`,
      ]),
    ),
  );
  out.push('');
  out.push('## Filling the pool against raw parallel create + start (ms)');
  out.push('');
  out.push(
    table(
      [
        'containers',
        'concurrency',
        'raw median',
        'pool exec median',
        'exec rate / raw rate',
        'pool runner median',
        'runner rate / raw rate',
        'raw reps',
        'exec reps',
        'runner reps',
      ],
      a.fill.map((f) => [
        String(f.containers),
        String(f.concurrency),
        fmt(f.rawMedianMs, 0),
        fmt(f.poolMedianMs, 0),
        fmt(f.ratio, 3),
        fmt(f.runnerMedianMs, 0),
        fmt(f.runnerRatio, 3),
        f.rawMs.map((x) => fmt(x, 0)).join(', '),
        f.poolMs.map((x) => fmt(x, 0)).join(', '),
        f.runnerMs.map((x) => fmt(x, 0)).join(', '),
      ]),
    ),
  );
  const mems = [a.memory, a.memoryRunner].filter((m): m is MemoryResult => m !== null);
  if (mems.length) {
    const m = mems[0];
    out.push('');
    out.push(
      `## Memory per idle container (MiB, ${mems.map((x) => `${x.containers} idle ${x.transport ?? 'exec'} containers`).join(', ')})`,
    );
    out.push('');
    const col = (f: (p: MemoryResult['perContainer']) => number | null) =>
      mems.map((x) => mib(f(x.perContainer)));
    const rows: string[][] = [
      ['container cgroup: memory.usage_in_bytes', ...col((p) => p.cgroupUsageBytes)],
      ['  of which rss', ...col((p) => p.cgroupRssBytes)],
      ['containerd-shim: anonymous memory', ...col((p) => p.shimAnonBytes)],
      ['  (its PSS, with its share of the shim binary)', ...col((p) => p.shimPssBytes)],
      ['dockerd + containerd RSS growth', ...col((p) => p.engineRssDeltaBytes)],
      ['**total on the host**', ...col((p) => p.totalBytes).map((v) => `**${v}**`)],
      ['cross-check: MemAvailable drop', ...col((p) => p.memAvailableDeltaBytes)],
    ];
    out.push(
      table(
        ['part', ...mems.map((x) => `MiB per container, ${x.transport ?? 'exec'} transport`)],
        rows,
      ),
    );
    const ratio = memoryRatio(a);
    if (ratio) {
      out.push('');
      out.push(
        `Runner against exec, per idle container: cgroup usage ${fmt(ratio.cgroup, 2)}x, cgroup rss ` +
          `${fmt(ratio.rss, 2)}x, total on the host ${fmt(ratio.total, 2)}x.`,
      );
    }
    out.push('');
    out.push(`Method: ${m.method}.`);
  }
  out.push('');
  out.push("## The pool's per-execution bookkeeping (µs per call)");
  out.push('');
  out.push(
    table(
      ['item', 'µs'],
      [
        ['per-execution log line, ConsoleLogger to /dev/null', fmt(a.micro.loggerLineUs, 2)],
        ['the same with the log level disabled', fmt(a.micro.loggerDisabledUs, 3)],
        ['uuid v4 (execution id)', fmt(a.micro.uuidUs, 3)],
      ],
    ),
  );
  out.push('');
  out.push('![latency distributions](latency.svg)');
  out.push('');
  return out.join('\n');
}

/** The console summary: the four-way comparison, the ratios and the targets. */
export function consoleSummary(a: Analysis): string {
  const out: string[] = [];
  const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
  const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
  for (const s of a.snippets) {
    out.push('');
    out.push(`${LABELS[s.snippet]}: latency in ms`);
    out.push(
      `  ${pad('method', 52)}${lpad('n', 5)}${lpad('p50', 9)}${lpad('p95', 9)}${lpad('p99', 9)}${lpad('/A p50', 9)}`,
    );
    for (const r of fourWayRows(s)) {
      out.push(
        `  ${pad(r[0], 52)}${lpad(r[1], 5)}${lpad(r[2], 9)}${lpad(r[3], 9)}${lpad(r[4], 9)}${lpad(r[6], 9)}`,
      );
    }
    out.push(
      `  ratios of p50: C/A ${fmt(s.ratios.CoverA, 3)}  D/A ${fmt(s.ratios.DoverA, 3)}  B/A ${fmt(s.ratios.BoverA, 3)}  ` +
        `C/B ${fmt(s.ratios.CoverB, 3)}  C/D ${fmt(s.ratios.CoverD, 3)}`,
    );
    out.push(
      `  paired C - D: settled ${fmt(s.paired.median, 2)} ms (95% CI ${fmt(s.paired.ci95[0], 2)}..${fmt(s.paired.ci95[1], 2)}), ` +
        `back to back ${fmt(s.pairedBackToBack.median, 2)} ms; pool's own time p50 ${fmt(s.phases.poolOwn.p50, 2)} ms`,
    );
    if (s.Ccmd.n) {
      out.push(
        `  C' - D (run({ cmd }) of the same program): ${fmt(s.pairedCmd.median, 2)} ms; run({ code })'s framing ` +
          `about ${fmt(s.paired.median - s.pairedCmd.median, 2)} ms`,
      );
    }
  }
  for (const r of a.runner) {
    out.push('');
    out.push(`${LABELS[r.snippet]}, runner transport: latency in ms`);
    out.push(
      `  ${pad('method', 58)}${lpad('n', 5)}${lpad('p50', 9)}${lpad('p95', 9)}${lpad('p99', 9)}${lpad('/D p50', 9)}`,
    );
    for (const row of runnerRows(r)) {
      out.push(
        `  ${pad(row[0], 58)}${lpad(row[1], 5)}${lpad(row[2], 9)}${lpad(row[3], 9)}${lpad(row[4], 9)}${lpad(row[6], 9)}`,
      );
    }
    out.push(
      `  R/D: p50 ${fmt(r.ratios.p50OverD, 3)}  p99 ${fmt(r.ratios.p99OverD, 3)}; R/C(exec) ${fmt(r.ratios.RoverCexec, 3)}; ` +
        `first run of the pool ${fmt(r.firstRunMs, 1)} ms; ${r.slowCount} runs > 0.2x D p50`,
    );
  }
  out.push('');
  out.push(
    `acquire(): p50 ${fmt(a.acquire.all.p50, 3)} ms, p95 ${fmt(a.acquire.all.p95, 3)} ms, p99 ${fmt(a.acquire.all.p99, 3)} ms (n ${a.acquire.all.n})`,
  );
  for (const t of a.throughput) {
    out.push(
      `throughput c=${t.concurrency}: pool exec ${fmt(t.poolPerSecond, 2)}/s (${fmt(t.ratio, 3)}), runner ` +
        `${fmt(t.runnerPerSecond, 2)}/s (${fmt(t.runnerRatio, 3)}), raw cycle ${fmt(t.rawPerSecond, 2)}/s`,
    );
  }
  for (const f of a.fill) {
    out.push(
      `fill ${f.containers} at c=${f.concurrency}: pool exec ${fmt(f.poolMedianMs, 0)} ms (${fmt(f.ratio, 3)}), runner ` +
        `${fmt(f.runnerMedianMs, 0)} ms (${fmt(f.runnerRatio, 3)}), raw ${fmt(f.rawMedianMs, 0)} ms`,
    );
  }
  for (const m of [a.memory, a.memoryRunner]) {
    if (!m) continue;
    out.push(
      `memory per idle ${m.transport ?? 'exec'} container: ${mib(m.perContainer.totalBytes)} MiB on the host ` +
        `(cgroup ${mib(m.perContainer.cgroupUsageBytes)}, rss ${mib(m.perContainer.cgroupRssBytes)}, shim ` +
        `${mib(m.perContainer.shimAnonBytes)}, engine ${mib(m.perContainer.engineRssDeltaBytes)})`,
    );
  }
  const mr = memoryRatio(a);
  if (mr) {
    out.push(
      `  runner / exec: cgroup ${fmt(mr.cgroup, 2)}x, rss ${fmt(mr.rss, 2)}x, total ${fmt(mr.total, 2)}x`,
    );
  }
  out.push('');
  out.push('targets:');
  for (const t of a.targets) {
    out.push(
      `  [${t.pass ? 'pass' : 'FAIL'}] ${t.target}: ${fmt(t.measured, t.unit === 'ms' ? 2 : 3)} ${t.unit} ` +
        `(threshold ${fmt(t.threshold, 2)})${t.note ? `; ${t.note}` : ''}`,
    );
  }
  return out.join('\n');
}

function roundAll<T extends object>(sample: T): Record<string, number> {
  return Object.fromEntries(
    Object.entries(sample as Record<string, number>).map(([k, v]) => [k, round(v, 2)]),
  );
}

/** The JSON written to results.json: configuration, environment, analysis and every raw sample (0.01 ms). */
export function toJson(raw: RawResults, a: Analysis): unknown {
  const r2 = (v: number) => round(v, 2);
  const sum = (s: Summary) => roundSummary(s);
  return {
    runId: raw.runId,
    startedAt: raw.startedAt,
    finishedAt: raw.finishedAt,
    wallMs: Math.round(raw.wallMs),
    config: raw.config,
    environment: raw.environment,
    targets: a.targets.map((t) => ({
      ...t,
      measured: round(t.measured, 4),
      threshold: round(t.threshold, 4),
    })),
    latency: Object.fromEntries(
      a.snippets.map((s) => [
        s.snippet,
        {
          A: sum(s.A),
          Aremove: sum(s.Aremove),
          B: sum(s.B),
          Bstop: sum(s.Bstop),
          Bcycle: sum(s.Bcycle),
          C: sum(s.C),
          D: sum(s.D),
          Cb2b: sum(s.Cb2b),
          Db2b: sum(s.Db2b),
          Ccmd: sum(s.Ccmd),
          pairedCmdMinusD: {
            ...s.pairedCmd,
            median: r2(s.pairedCmd.median),
            ci95: s.pairedCmd.ci95.map(r2),
          },
          pairedCminusD: { ...s.paired, median: r2(s.paired.median), ci95: s.paired.ci95.map(r2) },
          pairedCminusDBackToBack: {
            ...s.pairedBackToBack,
            median: r2(s.pairedBackToBack.median),
            ci95: s.pairedBackToBack.ci95.map(r2),
          },
          ratios: Object.fromEntries(Object.entries(s.ratios).map(([k, v]) => [k, round(v, 4)])),
          phases: Object.fromEntries(
            Object.entries(s.phases).map(([k, v]) => [k, typeof v === 'number' ? v : sum(v)]),
          ),
        },
      ]),
    ),
    runner: a.runner.map((r) => ({
      snippet: r.snippet,
      R: sum(r.R),
      D: sum(r.D),
      Rb2b: sum(r.Rb2b),
      Db2b: sum(r.Db2b),
      firstRunMs: r2(r.firstRunMs),
      slowCount: r.slowCount,
      ratios: Object.fromEntries(Object.entries(r.ratios).map(([k, v]) => [k, round(v, 4)])),
    })),
    acquire: {
      all: roundSummary(a.acquire.all, 4),
      firstOfRound: roundSummary(a.acquire.firstOfRound, 4),
    },
    throughput: a.throughput.map((t) => ({
      ...t,
      rawPerSecond: r2(t.rawPerSecond),
      poolPerSecond: r2(t.poolPerSecond),
      ratio: round(t.ratio, 4),
      rawLatency: sum(t.rawLatency),
      poolLatency: sum(t.poolLatency),
      rawNodeCpuMsPerRun: r2(t.rawNodeCpuMsPerRun),
      poolNodeCpuMsPerRun: r2(t.poolNodeCpuMsPerRun),
      runnerPerSecond: r2(t.runnerPerSecond),
      runnerRatio: round(t.runnerRatio, 4),
      runnerLatency: sum(t.runnerLatency),
      runnerNodeCpuMsPerRun: r2(t.runnerNodeCpuMsPerRun),
    })),
    fill: a.fill.map((f) => ({
      ...f,
      rawMedianMs: r2(f.rawMedianMs),
      poolMedianMs: r2(f.poolMedianMs),
      rawMs: f.rawMs.map(r2),
      poolMs: f.poolMs.map(r2),
      ratio: round(f.ratio, 4),
      ratioOfMedians: round(f.ratioOfMedians, 4),
      runnerMs: f.runnerMs.map(r2),
      runnerMedianMs: r2(f.runnerMedianMs),
      runnerRatio: round(f.runnerRatio, 4),
    })),
    memory: a.memory,
    memoryRunner: a.memoryRunner,
    memoryRunnerOverExec: memoryRatio(a),
    micro: a.micro,
    samples: raw.fourWay.map((fw) => ({
      snippet: fw.snippet,
      cold: fw.cold.map((s) => roundAll(s)),
      testcontainers: fw.testcontainers.map((s) => roundAll(s)),
      pairs: fw.pairs.map((p) => ({
        c: r2(p.c),
        d: r2(p.d),
        first: p.first,
        cDriverExec: r2(p.cDriverExec),
      })),
      cmdVariant: fw.cmdVariant.map(r2),
      backToBack: fw.backToBack.map((p) => ({
        c: r2(p.c),
        d: r2(p.d),
        first: p.first,
        cDriverExec: r2(p.cDriverExec),
      })),
    })),
    runnerSamples: (raw.runner ?? []).map((r) => ({
      snippet: r.snippet,
      settled: r.settled.map(r2),
      floor: r.floor.map(r2),
      pairs: r.pairs.map((p) => ({ c: r2(p.c), d: r2(p.d), first: p.first })),
      backToBack: r.backToBack.map((p) => ({ c: r2(p.c), d: r2(p.d), first: p.first })),
    })),
    acquireSamples: raw.acquire.samples.map((v) => round(v, 4)),
  };
}
