/**
 * The soak: `npm run bench -- --soak` (about 20-30 minutes; `--soak-runs N` for a shorter check).
 *
 * 10,000 single-use `run()`s through one pool at concurrency 4, a fixed mix of normal runs (Python code and a
 * shell command, each result checked), timeouts, OOM kills and output floods, on the Python sandbox image.
 * Measures over the runs: the service's RSS and heapUsed after a forced GC (node --expose-gc), its open file
 * descriptors (/proc/self/fd) and active handles (process.getActiveResourcesInfo()), the engine's container
 * count of the pool (polled, never above maxContainers), infrastructure errors (rejections of run()), and the
 * containers left at the end. Writes soak.json, soak.md and soak.svg. It asserts nothing; the targets are
 * checked and reported.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { Agent } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Dockerode from 'dockerode';
import type { ContainerPoolModuleOptions, ExecResult, RunRequest } from '../src';
import { LABELS } from '../src';
import { startBenchPool, waitSettled } from './pool-host';

const MiB = 1024 * 1024;
const QUIET_MS = 6_000;

/** Every 20 runs: 14 normal (Python and shell alternating), 2 timeouts, 2 OOM kills, 2 output floods. */
const MIX = 'NNNTNNNONNNFNNNTNNOF';
export type RunKind = 'python' | 'shell' | 'timeout' | 'oom' | 'flood';

export interface SoakConfig {
  image: string;
  runs: number;
  concurrency: number;
  /** Runs before the baseline (heap, descriptors, handles) is taken, with the pool settled. */
  warmupRuns: number;
  /** A memory/descriptor sample every this many completed runs. */
  sampleEvery: number;
  /** How often the engine's container count of the pool is polled (ms). */
  enginePollMs: number;
  pool: ContainerPoolModuleOptions;
}

export function soakConfig(image: string, runs = 10_000): SoakConfig {
  return {
    image,
    runs,
    concurrency: 4,
    warmupRuns: Math.max(20, Math.round(runs * 0.05)),
    sampleEvery: Math.max(5, Math.round(runs / 200)),
    enginePollMs: 200,
    pool: {
      size: 4,
      maxContainers: 8,
      maxConcurrentCreates: 4,
      memoryBytes: 128 * MiB,
      tmpSizeBytes: 16 * MiB,
      workdirSizeBytes: 16 * MiB,
      shmSizeBytes: 8 * MiB,
      maxOutputBytes: 64 * 1024,
      execTimeoutMs: 10_000,
      maxExecTimeoutMs: 10_000,
      containerLifetimeMs: 600_000,
    },
  };
}

export interface SoakSample {
  /** Completed runs when the sample was taken. */
  runs: number;
  atMs: number;
  rssBytes: number;
  /** heapUsed right after global.gc(). */
  heapUsedBytes: number;
  fds: number;
  /** The descriptors by what they point at (socket, pipe, anon_inode:[eventpoll], a path's first segment). */
  fdsByKind: Record<string, number>;
  handles: number;
  handlesByType: Record<string, number>;
}

/** The quiet state of the service (pool settled, GC forced): at the end of the warm-up, and at the end. */
export interface SoakBaseline extends SoakSample {
  poolContainers: number;
}

export interface SoakRaw {
  runId: string;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  config: SoakConfig;
  environment: {
    node: string;
    cpus: number;
    kernel: string;
    engine: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  samples: SoakSample[];
  baseline: SoakBaseline;
  end: SoakBaseline;
  /** After the pool was closed: the engine's containers of the pool. */
  containersLeft: number;
  outcomes: Record<RunKind, { runs: number; asExpected: number }>;
  /** Results that resolved but not as their kind expects (first few kept). */
  unexpected: { count: number; examples: string[] };
  /** run() rejections: the pool's infrastructure errors, by error name (first few messages kept). */
  errors: { count: number; byName: Record<string, number>; examples: string[] };
  maxEngineContainers: number;
  maxPoolContainers: number;
  enginePolls: number;
}

export interface SoakTarget {
  id: string;
  what: string;
  threshold: string;
  measured: string;
  pass: boolean;
}

export interface SoakAnalysis {
  /** Least-squares slope of RSS over the last 80 % of the runs, in MiB per 1,000 runs. */
  rssSlopeMiBPer1000: number;
  rssFitFromRun: number;
  heapChange: number;
  targets: SoakTarget[];
  runsPerSecond: number;
}

function requestFor(kind: RunKind, i: number): RunRequest {
  switch (kind) {
    case 'python':
      return { code: `import json, math\nprint(json.dumps({"i": ${i}, "r": math.isqrt(${i})}))` };
    case 'shell':
      return { cmd: ['echo', 'soak', String(i)] };
    case 'timeout':
      return { cmd: ['sleep', '30'], timeoutMs: 1_000 };
    case 'oom':
      return { code: 'b = b"\\1" * (200 << 20)\nprint("survived")' };
    case 'flood':
      return {
        cmd: ['sh', '-c', 'head -c 10000000 /dev/zero; head -c 10000000 /dev/zero >&2'],
      };
  }
}

function asExpected(kind: RunKind, i: number, r: ExecResult): boolean {
  switch (kind) {
    case 'python':
      return r.exitCode === 0 && r.stdout === `{"i": ${i}, "r": ${Math.floor(Math.sqrt(i))}}\n`;
    case 'shell':
      return r.exitCode === 0 && r.stdout === `soak ${i}\n`;
    case 'timeout':
      return r.timedOut && r.exitCode === null;
    case 'oom':
      return r.oomKilled && !r.stdout.includes('survived');
    case 'flood':
      return (
        r.truncated && r.stdoutBytes.length === 64 * 1024 && r.stderrBytes.length === 64 * 1024
      );
  }
}

export const kindOf = (i: number): RunKind => {
  const c = MIX[i % MIX.length];
  if (c === 'T') return 'timeout';
  if (c === 'O') return 'oom';
  if (c === 'F') return 'flood';
  return i % 2 ? 'shell' : 'python';
};

function fdKinds(): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  const fds = readdirSync('/proc/self/fd');
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used
    }
    const kind =
      /^(socket|pipe):/.exec(target)?.[1] ??
      (target.startsWith('anon_inode:') ? target : target.split('/').slice(0, 2).join('/'));
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  return { total: Object.values(byKind).reduce((a, b) => a + b, 0), byKind };
}

function handles(): { total: number; byType: Record<string, number> } {
  const byType: Record<string, number> = {};
  const all = process.getActiveResourcesInfo();
  for (const t of all) byType[t] = (byType[t] ?? 0) + 1;
  return { total: all.length, byType };
}

/** A forced full GC: node --expose-gc's gc(), else the same function obtained at run time (e.g. under jest). */
let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) gcFn = exposed;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

function sample(runs: number, t0: number): SoakSample {
  gc();
  const m = process.memoryUsage();
  const h = handles();
  const f = fdKinds();
  return {
    runs,
    atMs: Math.round(performance.now() - t0),
    rssBytes: m.rss,
    heapUsedBytes: m.heapUsed,
    fds: f.total,
    fdsByKind: f.byKind,
    handles: h.total,
    handlesByType: h.byType,
  };
}

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : NaN;
}

export interface SoakOptions {
  docker?: Dockerode;
  runId: string;
  /** Prefix of the pool's name: `bench-<runId>` from the command line (tests pass a `test-…` name). */
  poolPrefix?: string;
  log?: (line: string) => void;
}

/** Runs the soak; closes the pool and removes whatever of it is left, whatever happens. */
export async function runSoak(config: SoakConfig, opts: SoakOptions): Promise<SoakRaw> {
  const docker = opts.docker ?? new Dockerode();
  const log = opts.log ?? ((line: string) => console.log(line));
  const name = `${opts.poolPrefix ?? `bench-${opts.runId}`}-soak`;
  const poolLabel = { label: [`${LABELS.pool}=${name}`] };
  const startedAt = new Date();
  const t0 = performance.now();
  const version = await docker.version();
  const environment = {
    node: process.version,
    cpus: cpus().length,
    kernel: release(),
    engine: `${(version as { Platform?: { Name?: string } }).Platform?.Name || 'Docker Engine'} ${version.Version}`,
    loadAverageAtStart: loadavg(),
    loadAverageAtEnd: [] as number[],
  };
  log(
    `soak: ${config.runs} runs at concurrency ${config.concurrency} on ${config.image}, pool ${name} ` +
      `(size ${config.pool.size}, maxContainers ${config.pool.maxContainers}), load ${loadavg()
        .map((v) => v.toFixed(2))
        .join(' ')}`,
  );
  const host = await startBenchPool({ ...config.pool, name, image: config.image });
  const { pool } = host;

  // The engine's and the pool's own container counts, polled throughout, by a client of its own without
  // keep-alive, so that the polls leave no idle socket among the service's descriptors.
  // (It reaches the engine as `new Dockerode()` does: DOCKER_HOST or the default socket.)
  const pollClient = new Dockerode({
    agent: new Agent({ keepAlive: false }),
  } as Dockerode.DockerOptions);
  let maxEngineContainers = 0;
  let maxPoolContainers = 0;
  let enginePolls = 0;
  let polling = true;
  const poolCount = () => {
    const s = pool.stats();
    return s.idle + s.leased + s.creating + s.destroying;
  };
  const poller = (async () => {
    while (polling) {
      maxPoolContainers = Math.max(maxPoolContainers, poolCount());
      try {
        const rows = await pollClient.listContainers({ all: true, filters: poolLabel });
        maxEngineContainers = Math.max(maxEngineContainers, rows.length);
        enginePolls++;
      } catch {
        // a missed poll; the next one counts
      }
      await new Promise((r) => setTimeout(r, config.enginePollMs));
    }
  })();

  const outcomes = Object.fromEntries(
    (['python', 'shell', 'timeout', 'oom', 'flood'] as RunKind[]).map((k) => [
      k,
      { runs: 0, asExpected: 0 },
    ]),
  ) as SoakRaw['outcomes'];
  const unexpected = { count: 0, examples: [] as string[] };
  const errors = { count: 0, byName: {} as Record<string, number>, examples: [] as string[] };
  const samples: SoakSample[] = [];
  let completed = 0;
  let next = 0;
  let lastLog = performance.now();

  const runOne = async (i: number) => {
    const kind = kindOf(i);
    outcomes[kind].runs++;
    try {
      const r = await pool.run(requestFor(kind, i));
      // Every result of the transport the soak runs on (config.pool.transport, exec unless named).
      if (r.transport === (config.pool.transport ?? 'exec') && asExpected(kind, i, r)) {
        outcomes[kind].asExpected++;
      } else {
        unexpected.count++;
        if (unexpected.examples.length < 10) {
          unexpected.examples.push(
            `run ${i} (${kind}): exit ${r.exitCode}, timedOut ${r.timedOut}, oomKilled ${r.oomKilled}, ` +
              `truncated ${r.truncated}, transport ${r.transport}, stdout ${JSON.stringify(r.stdout.slice(0, 100))}`,
          );
        }
      }
    } catch (err) {
      errors.count++;
      const e = err as Error;
      errors.byName[e.name] = (errors.byName[e.name] ?? 0) + 1;
      if (errors.examples.length < 10)
        errors.examples.push(`run ${i} (${kind}): ${e.name}: ${e.message}`);
    }
    completed++;
    if (completed % config.sampleEvery === 0) samples.push(sample(completed, t0));
    if (performance.now() - lastLog > 30_000) {
      lastLog = performance.now();
      const s = samples[samples.length - 1];
      log(
        `soak: ${completed}/${config.runs} runs, ${((completed * 1000) / (performance.now() - t0)).toFixed(1)}/s, ` +
          `RSS ${(s.rssBytes / MiB).toFixed(1)} MiB, heap ${(s.heapUsedBytes / MiB).toFixed(1)} MiB, ` +
          `${errors.count} errors, ${unexpected.count} unexpected, max containers ${maxEngineContainers}`,
      );
    }
  };
  const runUntil = async (end: number) => {
    const worker = async () => {
      while (next < end) await runOne(next++);
    };
    await Promise.all(Array.from({ length: config.concurrency }, worker));
  };
  /**
   * The quiet state: the pool refilled and idle, then 6 s more (Node's HTTP agent closes an idle keep-alive
   * socket after 5 s; a settled pool makes no engine call), GC forced.
   */
  const quiet = async (): Promise<SoakBaseline> => {
    await waitSettled(pool, 60_000, QUIET_MS);
    await waitSettled(pool, 60_000, 0);
    return { ...sample(completed, t0), poolContainers: poolCount() };
  };

  let baseline: SoakBaseline;
  let end: SoakBaseline;
  let containersLeft = 0;
  try {
    samples.push(sample(0, t0));
    await runUntil(config.warmupRuns);
    baseline = await quiet();
    log(
      `soak: baseline after ${config.warmupRuns} warm-up runs: RSS ${(baseline.rssBytes / MiB).toFixed(1)} MiB, ` +
        `heap ${(baseline.heapUsedBytes / MiB).toFixed(1)} MiB, ${baseline.fds} fds, ${baseline.handles} handles`,
    );
    await runUntil(config.runs);
    end = await quiet();
  } finally {
    polling = false;
    await poller;
    await host.close();
    // What the pool left on the engine after its shutdown (it waits for its removals).
    containersLeft = (await docker.listContainers({ all: true, filters: poolLabel })).length;
    if (containersLeft) {
      const rows = await docker.listContainers({ all: true, filters: poolLabel });
      await Promise.allSettled(rows.map((r) => docker.getContainer(r.Id).remove({ force: true })));
    }
  }
  environment.loadAverageAtEnd = loadavg();
  return {
    runId: opts.runId,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    wallMs: performance.now() - t0,
    config,
    environment,
    samples,
    baseline,
    end,
    containersLeft,
    outcomes,
    unexpected,
    errors,
    maxEngineContainers,
    maxPoolContainers,
    enginePolls,
  };
}

export function analyzeSoak(raw: SoakRaw): SoakAnalysis {
  const fitFrom = Math.round(raw.config.runs * 0.2);
  const fit = raw.samples.filter((s) => s.runs >= fitFrom);
  const rssSlope = slope(
    fit.map((s) => s.runs),
    fit.map((s) => s.rssBytes),
  );
  const rssSlopeMiBPer1000 = (rssSlope * 1000) / MiB;
  const heapChange = raw.end.heapUsedBytes / raw.baseline.heapUsedBytes - 1;
  const max = raw.config.pool.maxContainers ?? NaN;
  const okOutcomes = Object.values(raw.outcomes).reduce((n, o) => n + o.asExpected, 0);
  const mb = (v: number) => `${(v / MiB).toFixed(2)} MiB`;
  const typesChanged = Object.keys({ ...raw.baseline.handlesByType, ...raw.end.handlesByType })
    .filter((t) => (raw.end.handlesByType[t] ?? 0) !== (raw.baseline.handlesByType[t] ?? 0))
    .map((t) => `${t} ${raw.baseline.handlesByType[t] ?? 0} -> ${raw.end.handlesByType[t] ?? 0}`);
  const targets: SoakTarget[] = [
    {
      id: 'rss-slope',
      what: `RSS slope over the last 80 % of the runs (from run ${fitFrom}, least squares)`,
      threshold: '< 1 MiB per 1,000 runs',
      measured: `${rssSlopeMiBPer1000.toFixed(3)} MiB per 1,000 runs`,
      pass: rssSlopeMiBPer1000 < 1,
    },
    {
      id: 'heap',
      what: 'heapUsed after a forced GC at the end against the post-warm-up value',
      threshold: 'within 10 %',
      measured: `${mb(raw.baseline.heapUsedBytes)} -> ${mb(raw.end.heapUsedBytes)} (${(heapChange * 100).toFixed(1)} %)`,
      pass: Math.abs(heapChange) <= 0.1,
    },
    {
      id: 'fds',
      what: 'open file descriptors at the end (pool settled) against the post-warm-up value',
      threshold: 'back to baseline (no more than it)',
      measured: `${raw.baseline.fds} -> ${raw.end.fds}`,
      pass: raw.end.fds <= raw.baseline.fds,
    },
    {
      id: 'handles',
      what: 'active handles at the end (pool settled) against the post-warm-up value',
      threshold: 'back to baseline (no more than it)',
      measured:
        `${raw.baseline.handles} -> ${raw.end.handles}` +
        (typesChanged.length ? ` (${typesChanged.join(', ')})` : ''),
      pass: raw.end.handles <= raw.baseline.handles,
    },
    {
      id: 'containers',
      what: `the engine's container count of the pool, polled every ${raw.config.enginePollMs} ms (${raw.enginePolls} polls)`,
      threshold: `never above maxContainers (${max})`,
      measured: `max ${raw.maxEngineContainers} (the pool's own count: max ${raw.maxPoolContainers})`,
      pass: raw.maxEngineContainers <= max && raw.maxPoolContainers <= max,
    },
    {
      id: 'errors',
      what: 'infrastructure errors (run() rejections)',
      threshold: '0',
      measured: `${raw.errors.count}${raw.errors.count ? ` (${JSON.stringify(raw.errors.byName)})` : ''}`,
      pass: raw.errors.count === 0,
    },
    {
      id: 'outcomes',
      what: 'results as their kind expects (exact output; timedOut; oomKilled; truncated at the cap)',
      threshold: `all ${raw.config.runs}`,
      measured: `${okOutcomes} (${raw.unexpected.count} unexpected)`,
      pass: okOutcomes === raw.config.runs,
    },
    {
      id: 'left',
      what: 'containers of the pool left on the engine after its shutdown',
      threshold: '0',
      measured: String(raw.containersLeft),
      pass: raw.containersLeft === 0,
    },
  ];
  return {
    rssSlopeMiBPer1000,
    rssFitFromRun: fitFrom,
    heapChange,
    targets,
    runsPerSecond: (raw.config.runs * 1000) / raw.wallMs,
  };
}

export function soakMarkdown(raw: SoakRaw, a: SoakAnalysis): string {
  const mb = (v: number) => (v / MiB).toFixed(1);
  const lines = [
    '# Soak: single-use runs at concurrency 4',
    '',
    `${raw.startedAt}, wall time ${(raw.wallMs / 1000).toFixed(0)} s (${a.runsPerSecond.toFixed(2)} runs/s). ` +
      `${raw.environment.engine}; ${raw.environment.cpus} CPUs; kernel ${raw.environment.kernel}; Node ` +
      `${raw.environment.node}. Image \`${raw.config.image}\`. Load average at start ` +
      `${raw.environment.loadAverageAtStart.map((v) => v.toFixed(2)).join(' ')}, at end ` +
      `${raw.environment.loadAverageAtEnd.map((v) => v.toFixed(2)).join(' ')}.`,
    '',
    `${raw.config.runs} runs (${raw.config.warmupRuns} of them warm-up), concurrency ${raw.config.concurrency}; ` +
      `pool size ${raw.config.pool.size}, maxContainers ${raw.config.pool.maxContainers}, maxConcurrentCreates ` +
      `${raw.config.pool.maxConcurrentCreates}, memory ${mb(raw.config.pool.memoryBytes as number)} MiB, output cap ` +
      `${(raw.config.pool.maxOutputBytes as number) / 1024} KiB. A sample (GC forced) every ${raw.config.sampleEvery} runs.`,
    '',
    '## Targets',
    '',
    '| target | threshold | measured | pass |',
    '| --- | --- | --- | --- |',
    ...a.targets.map(
      (t) => `| ${t.what} | ${t.threshold} | ${t.measured} | ${t.pass ? 'yes' : 'NO'} |`,
    ),
    '',
    '## Runs by kind',
    '',
    '| kind | what | runs | as expected |',
    '| --- | --- | --- | --- |',
    ...(
      [
        ['python', '`run({ code })`: a small JSON print, output checked'],
        ['shell', "`run({ cmd: ['echo', ...] })`, output checked"],
        ['timeout', '`sleep 30` with a 1 s timeout: timedOut, exitCode null'],
        ['oom', 'Python allocating 200 MiB under a 128 MiB limit: oomKilled'],
        ['flood', '10 MB on stdout and 10 MB on stderr: truncated at 64 KiB each'],
      ] as [RunKind, string][]
    ).map(
      ([k, what]) => `| ${k} | ${what} | ${raw.outcomes[k].runs} | ${raw.outcomes[k].asExpected} |`,
    ),
    '',
    '## The quiet states (pool settled, GC forced)',
    '',
    '| | runs | RSS MiB | heapUsed MiB | fds | active handles |',
    '| --- | --- | --- | --- | --- | --- |',
    ...(
      [
        ['after the warm-up', raw.baseline],
        ['at the end', raw.end],
      ] as [string, SoakBaseline][]
    ).map(
      ([label, b]) =>
        `| ${label} | ${b.runs} | ${mb(b.rssBytes)} | ${mb(b.heapUsedBytes)} | ${b.fds} | ${b.handles} (${Object.entries(
          b.handlesByType,
        )
          .map(([t, n]) => `${t} ${n}`)
          .join(', ')}) |`,
    ),
    '',
    `RSS fit: ${a.rssSlopeMiBPer1000.toFixed(3)} MiB per 1,000 runs over the samples from run ${a.rssFitFromRun} on.`,
    '',
    ...(raw.errors.examples.length
      ? ['## Errors', '', ...raw.errors.examples.map((e) => `- ${e}`), '']
      : []),
    ...(raw.unexpected.examples.length
      ? ['## Unexpected results', '', ...raw.unexpected.examples.map((e) => `- ${e}`), '']
      : []),
    '![RSS and heap over the runs](soak.svg)',
    '',
  ];
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Two panels over the run count: RSS and heapUsed after GC (MiB, with the RSS fit); descriptors and handles. */
export function soakSvg(raw: SoakRaw, a: SoakAnalysis): string {
  const width = 980;
  const left = 70;
  const right = 200;
  const plotW = width - left - right;
  const panelH = 220;
  const gap = 70;
  const top = 70;
  const xMax = raw.config.runs;
  const x = (runs: number) => left + (runs / xMax) * plotW;
  const parts: string[] = [];

  const panel = (
    y0: number,
    title: string,
    unit: string,
    series: { label: string; color: string; values: [number, number][] }[],
    extra: (y: (v: number) => number) => string[] = () => [],
  ) => {
    const all = series.flatMap((s) => s.values.map(([, v]) => v));
    const lo = Math.floor(Math.min(0, ...all));
    const hiRaw = Math.max(...all) * 1.1 || 1;
    const step = niceStep(hiRaw - lo);
    const hi = Math.ceil(hiRaw / step) * step;
    const y = (v: number) => y0 + panelH - ((v - lo) / (hi - lo)) * panelH;
    parts.push(`<text x="16" y="${y0 - 14}" class="panel">${esc(title)}</text>`);
    for (let v = lo; v <= hi + 1e-9; v += step) {
      parts.push(
        `<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${left + plotW}" y2="${y(v).toFixed(1)}" class="grid"/>`,
      );
      parts.push(
        `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" class="ytick">${+v.toFixed(2)}</text>`,
      );
    }
    const xStep = niceStep(xMax);
    for (let r = 0; r <= xMax; r += xStep) {
      parts.push(
        `<line x1="${x(r).toFixed(1)}" y1="${y0}" x2="${x(r).toFixed(1)}" y2="${y0 + panelH}" class="grid"/>`,
      );
      parts.push(`<text x="${x(r).toFixed(1)}" y="${y0 + panelH + 14}" class="tick">${r}</text>`);
    }
    parts.push(
      `<text x="${left + plotW / 2}" y="${y0 + panelH + 30}" class="tick">runs completed</text>`,
    );
    parts.push(
      `<text x="14" y="${y0 + panelH / 2}" class="tick" transform="rotate(-90 14 ${y0 + panelH / 2})">${esc(unit)}</text>`,
    );
    series.forEach((s, i) => {
      const pts = s.values.map(([r, v]) => `${x(r).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`);
      parts.push(
        `<line x1="${left + plotW + 16}" y1="${y0 + 14 + i * 18}" x2="${left + plotW + 36}" y2="${y0 + 14 + i * 18}" stroke="${s.color}" stroke-width="3"/>`,
      );
      parts.push(
        `<text x="${left + plotW + 42}" y="${y0 + 18 + i * 18}" class="label">${esc(s.label)}</text>`,
      );
    });
    parts.push(...extra(y));
  };

  const mb = (v: number) => v / MiB;
  panel(
    top,
    'Service memory (after a forced GC)',
    'MiB',
    [
      { label: 'RSS', color: '#d62728', values: raw.samples.map((s) => [s.runs, mb(s.rssBytes)]) },
      {
        label: 'heapUsed',
        color: '#1f77b4',
        values: raw.samples.map((s) => [s.runs, mb(s.heapUsedBytes)]),
      },
    ],
    (y) => {
      // The least-squares line of RSS over the last 80 %.
      const fit = raw.samples.filter((s) => s.runs >= a.rssFitFromRun);
      if (fit.length < 2) return [];
      const mx = fit.reduce((n, s) => n + s.runs, 0) / fit.length;
      const my = fit.reduce((n, s) => n + mb(s.rssBytes), 0) / fit.length;
      const k = a.rssSlopeMiBPer1000 / 1000;
      const at = (r: number) => my + k * (r - mx);
      return [
        `<line x1="${x(a.rssFitFromRun).toFixed(1)}" y1="${y(at(a.rssFitFromRun)).toFixed(1)}" x2="${x(xMax).toFixed(1)}" y2="${y(at(xMax)).toFixed(1)}" stroke="#333" stroke-width="1.2" stroke-dasharray="5,4"/>`,
        `<text x="${left + plotW + 16}" y="${top + 58}" class="label">- - RSS fit: ${a.rssSlopeMiBPer1000.toFixed(3)}</text>`,
        `<text x="${left + plotW + 16}" y="${top + 72}" class="label">MiB per 1,000 runs</text>`,
      ];
    },
  );
  panel(top + panelH + gap, 'Open descriptors and active handles', 'count', [
    {
      label: 'file descriptors',
      color: '#2ca02c',
      values: raw.samples.map((s) => [s.runs, s.fds]),
    },
    {
      label: 'active handles',
      color: '#9467bd',
      values: raw.samples.map((s) => [s.runs, s.handles]),
    },
  ]);
  const height = top + 2 * panelH + gap + 50;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>',
    '.title{font-size:16px;font-weight:bold}.sub{font-size:11px;fill:#555}.panel{font-size:13px;font-weight:bold}',
    '.grid{stroke:#ddd;stroke-width:1}.tick{font-size:10px;fill:#555;text-anchor:middle}',
    '.ytick{font-size:10px;fill:#555;text-anchor:end}.label{font-size:11px}',
    '</style>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="16" y="24" class="title">Soak: ${raw.config.runs} single-use runs at concurrency ${raw.config.concurrency}</text>`,
    `<text x="16" y="40" class="sub">${esc(`${raw.environment.engine}, ${raw.environment.cpus} CPUs, ${raw.startedAt}; a sample every ${raw.config.sampleEvery} runs`)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function niceStep(range: number): number {
  const raw = range / 5;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

export function soakSummary(raw: SoakRaw, a: SoakAnalysis): string {
  return [
    `soak: ${raw.config.runs} runs in ${(raw.wallMs / 1000).toFixed(0)} s (${a.runsPerSecond.toFixed(2)}/s)`,
    'targets:',
    ...a.targets.map(
      (t) => `  [${t.pass ? 'pass' : 'FAIL'}] ${t.what}: ${t.measured} (${t.threshold})`,
    ),
  ].join('\n');
}

/** Writes soak.json, soak.md and soak.svg to `outDir`; returns their paths. */
export async function writeSoak(outDir: string, raw: SoakRaw, a: SoakAnalysis): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const files = {
    json: join(outDir, 'soak.json'),
    md: join(outDir, 'soak.md'),
    svg: join(outDir, 'soak.svg'),
  };
  await writeFile(files.json, JSON.stringify({ ...raw, analysis: a }, null, 2) + '\n');
  await writeFile(files.md, soakMarkdown(raw, a));
  await writeFile(files.svg, soakSvg(raw, a));
  return Object.values(files);
}
