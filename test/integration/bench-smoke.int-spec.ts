import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_RUN_LABEL } from '../../bench/engine';
import { analyze, consoleSummary } from '../../bench/report';
import { newRunId, quickConfig, runBench, writeResults } from '../../bench/run';
import type { RawResults } from '../../bench/report';
import { analyzeSoak, runSoak, soakConfig, writeSoak, type SoakRaw } from '../../bench/soak';
import {
  analyzeProfiles,
  profilesConfig,
  runProfilesBench,
  writeProfiles,
  type ProfilesRaw,
} from '../../bench/profiles';
import {
  analyzeSessions,
  runSessionsBench,
  sessionsConfig,
  writeSessions,
  type SessionsRaw,
} from '../../bench/sessions';
import {
  analyzeOutputs,
  outputsConfig,
  runOutputsBench,
  writeOutputs,
  type OutputsRaw,
} from '../../bench/outputs';
import {
  DATASCIENCE_IMAGE,
  docker,
  SANDBOX_IMAGE,
  TEST_LABEL,
  uniquePoolName,
} from '../support/integration';

const finitePositive = (v: number) => Number.isFinite(v) && v > 0;

/**
 * Keeps `npm run bench` working: the quick mode's functions on the real engine, with every part present and
 * well formed. Structure only: timing is reported by the benchmark, never asserted here.
 */
describe('benchmark (quick mode, structure only)', () => {
  let raw: RawResults;
  let dir: string;
  const config = quickConfig(SANDBOX_IMAGE);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
    raw = await runBench(config, {
      docker,
      poolPrefix: uniquePoolName('bench'),
      labels: { [TEST_LABEL]: 'bench' },
      log: () => undefined,
    });
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('measures A, B, C and D for both snippets, with the samples the plan asks for', () => {
    expect(raw.fourWay.map((f) => f.snippet)).toEqual(['python', 'shell']);
    for (const fw of raw.fourWay) {
      expect(fw.cold).toHaveLength(config.fourWay.rounds);
      expect(fw.testcontainers).toHaveLength(config.fourWay.testcontainers);
      expect(fw.pairs).toHaveLength(config.fourWay.rounds);
      expect(fw.backToBack).toHaveLength(config.fourWay.backToBack);
      for (const s of fw.cold) {
        for (const v of [s.latency, s.create, s.start, s.exec, s.remove])
          expect(finitePositive(v)).toBe(true);
        expect(s.latency).toBeGreaterThanOrEqual(s.create + s.start);
      }
      for (const s of fw.testcontainers) {
        for (const v of [s.latency, s.start, s.exec, s.stop]) expect(finitePositive(v)).toBe(true);
      }
      for (const p of [...fw.pairs, ...fw.backToBack]) {
        expect(finitePositive(p.c) && finitePositive(p.d) && finitePositive(p.cDriverExec)).toBe(
          true,
        );
        expect(p.cDriverExec).toBeLessThanOrEqual(p.c);
      }
      // Alternating order, as the paired comparison needs.
      expect(fw.pairs.map((p) => p.first)).toEqual(
        fw.pairs.map((_, i) => ((i + config.fourWay.warmup) % 2 === 0 ? 'C' : 'D')),
      );
    }
  });

  it('measures acquire(), throughput, filling and memory', () => {
    expect(raw.acquire.samples).toHaveLength(config.acquire.rounds * config.acquire.perRound);
    expect(raw.acquire.samples.every(finitePositive)).toBe(true);
    expect(raw.throughput.map((t) => t.concurrency)).toEqual(config.throughput.levels);
    for (const t of raw.throughput) {
      for (const side of [t.raw, t.pool]) {
        expect(Number.isInteger(side.runs)).toBe(true);
        expect(side.latencies).toHaveLength(side.runs);
        // Both orders (raw then pool, pool then raw), each with its own window, added up.
        expect(side.windowMs).toBe(2 * config.throughput.windowMs);
        expect(side.perSecond).toBeCloseTo((side.runs * 1000) / side.windowMs, 6);
      }
    }
    expect(raw.fill.map((f) => f.concurrency)).toEqual(config.fill.concurrencies);
    for (const f of raw.fill) {
      expect(f.rawMs).toHaveLength(config.fill.reps);
      expect(f.poolMs).toHaveLength(config.fill.reps);
    }
    expect(raw.memory?.containers).toBe(config.memory.containers);
    expect(raw.memory?.after.dockerdRssBytes).toBeGreaterThan(0);
    expect(Number.isFinite(raw.micro.loggerLineUs)).toBe(true);
  });

  it('checks every target and writes JSON, markdown and an SVG chart', async () => {
    const analysis = analyze(raw);
    const ids = analysis.targets.map((t) => t.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'acquire-p50',
        'overhead-python',
        'overhead-shell',
        'warm-vs-cold-python',
        'warm-vs-cold-shell',
        'throughput-c4',
        `fill-${config.fill.containers}-c${config.fill.concurrencies[0]}`,
      ]),
    );
    for (const t of analysis.targets) expect(typeof t.pass).toBe('boolean');
    expect(consoleSummary(analysis)).toContain('targets:');

    const files = await writeResults(dir, raw, analysis);
    expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual([
      'latency.svg',
      'results.json',
      'results.md',
    ]);
    const json = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as {
      latency: Record<string, { C: { n: number } }>;
      targets: unknown[];
    };
    expect(Object.keys(json.latency).sort()).toEqual(['python', 'shell']);
    expect(json.latency.python.C.n).toBe(config.fourWay.rounds);
    expect(json.targets).toHaveLength(analysis.targets.length);
    const md = await readFile(join(dir, 'results.md'), 'utf8');
    expect(md).toContain('## Targets');
    expect(md).toContain('## Latency, Python snippet (ms)');
    const svg = await readFile(join(dir, 'latency.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('C pool run(), settled');
  });

  it('leaves no container of its own behind', async () => {
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${BENCH_RUN_LABEL}=${raw.runId}`] },
    });
    expect(left.map((c) => c.Names[0])).toEqual([]);
  });
});

/**
 * Keeps `npm run bench -- --soak` working: a few runs of the soak's mix on the real engine, every part of its
 * results present and written. The soak's targets are checked by the soak itself, not here.
 */
describe('soak (a few runs, structure only)', () => {
  const config = soakConfig(SANDBOX_IMAGE, 40);
  let raw: SoakRaw;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soak-smoke-'));
    raw = await runSoak(config, {
      docker,
      runId: 'smoke',
      poolPrefix: uniquePoolName('soak'),
      log: () => undefined,
    });
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs every kind of the mix, samples on schedule, measures both quiet states, leaves nothing', () => {
    const kinds = Object.keys(raw.outcomes).sort();
    expect(kinds).toEqual(['flood', 'oom', 'python', 'shell', 'timeout']);
    for (const k of kinds)
      expect(raw.outcomes[k as keyof SoakRaw['outcomes']].runs).toBeGreaterThan(0);
    expect(Object.values(raw.outcomes).reduce((n, o) => n + o.runs, 0)).toBe(config.runs);
    expect(raw.samples.map((s) => s.runs)).toEqual(
      Array.from(
        { length: config.runs / config.sampleEvery + 1 },
        (_, i) => i * config.sampleEvery,
      ),
    );
    for (const s of [...raw.samples, raw.baseline, raw.end]) {
      expect(s.rssBytes).toBeGreaterThan(s.heapUsedBytes);
      expect(s.fds).toBe(Object.values(s.fdsByKind).reduce((a, b) => a + b, 0));
      expect(s.handles).toBe(Object.values(s.handlesByType).reduce((a, b) => a + b, 0));
    }
    expect(raw.baseline.runs).toBe(config.warmupRuns);
    expect(raw.end.runs).toBe(config.runs);
    expect(raw.enginePolls).toBeGreaterThan(0);
    expect(raw.containersLeft).toBe(0);
  });

  it('checks every target and writes JSON, markdown and an SVG plot', async () => {
    const analysis = analyzeSoak(raw);
    expect(analysis.targets.map((t) => t.id)).toEqual([
      'rss-slope',
      'heap',
      'fds',
      'handles',
      'containers',
      'errors',
      'outcomes',
      'left',
    ]);
    for (const t of analysis.targets) expect(typeof t.pass).toBe('boolean');
    const files = await writeSoak(dir, raw, analysis);
    expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual([
      'soak.json',
      'soak.md',
      'soak.svg',
    ]);
    const json = JSON.parse(await readFile(join(dir, 'soak.json'), 'utf8')) as SoakRaw & {
      analysis: { targets: unknown[] };
    };
    expect(json.samples).toHaveLength(raw.samples.length);
    expect(json.analysis.targets).toHaveLength(analysis.targets.length);
    expect(await readFile(join(dir, 'soak.md'), 'utf8')).toContain('## Targets');
    const svg = await readFile(join(dir, 'soak.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(4);
  });
});

describe('profiles benchmark (a few samples, structure only)', () => {
  const config = { ...profilesConfig(SANDBOX_IMAGE, 5, 3), burstConcurrency: 8 };
  let raw: ProfilesRaw;
  let name: string;

  beforeAll(async () => {
    name = uniquePoolName('profiles-bench');
    raw = await runProfilesBench(config, {
      docker,
      runId: 'smoke',
      poolPrefix: name,
      log: () => undefined,
    });
  }, 300_000);

  it("measures B alone and during the burst, with the burst's counts, and leaves nothing", async () => {
    for (const phase of [raw.alone, raw.burst]) {
      expect(phase.acquires).toHaveLength(config.samples);
      expect(phase.runsMs).toHaveLength(config.runSamples);
      for (const a of phase.acquires) expect(finitePositive(a.ms)).toBe(true);
      expect(phase.runsMs.every(finitePositive)).toBe(true);
    }
    expect(raw.burstRuns).toBeGreaterThan(0);
    expect(raw.moduleCount.samples).toBeGreaterThan(0);
    // The benchmark waits for A at its ceiling before it measures B during the burst.
    expect(raw.aMax).toBeGreaterThanOrEqual(config.maxContainersTotal - config.sizeB);
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`io.container-pool.pool=${name}-profiles`] },
    });
    expect(left).toEqual([]);
  });

  it('checks every target and writes JSON and markdown', async () => {
    const analysis = analyzeProfiles(raw);
    expect(analysis.targets).toHaveLength(7);
    for (const t of analysis.targets) expect(typeof t.pass).toBe('boolean');
    const dir = await mkdtemp(join(tmpdir(), 'profiles-smoke-'));
    try {
      const files = await writeProfiles(dir, raw, analysis);
      expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual([
        'profiles.json',
        'profiles.md',
      ]);
      expect(await readFile(join(dir, 'profiles.md'), 'utf8')).toContain('## Targets');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Keeps `npm run bench -- --sessions` working: a few calls with short gaps and two opens on the real engine,
 * every part of the results present and written. Timing is the benchmark's to report, never asserted here.
 */
describe('sessions benchmark (a few calls, structure only)', () => {
  const config = sessionsConfig(SANDBOX_IMAGE, {
    rounds: 6,
    warmup: 1,
    gapMs: [5, 15],
    floorEvery: 2,
    opens: 2,
    cold: 1,
  });
  let raw: SessionsRaw;

  beforeAll(async () => {
    raw = await runSessionsBench(config, {
      docker,
      runId: newRunId(),
      poolPrefix: uniquePoolName('sessions-bench'),
      log: () => undefined,
    });
  }, 120_000);

  it('measures the calls, the interleaved floor, the opens and the cold baseline, and leaves nothing', async () => {
    expect(raw.callMs).toHaveLength(config.rounds);
    expect(raw.durationMs).toHaveLength(config.rounds);
    expect(raw.gapBeforeMs).toHaveLength(config.rounds);
    expect(raw.floorMs).toHaveLength(config.rounds / config.floorEvery);
    expect(raw.finalX).toBe(config.warmup + config.rounds);
    expect(raw.openMs).toHaveLength(config.opens);
    expect(raw.firstCallMs).toHaveLength(config.opens);
    expect(raw.coldMs).toHaveLength(config.cold);
    for (const v of [
      ...raw.callMs,
      ...raw.floorMs,
      ...raw.openMs,
      ...raw.firstCallMs,
      ...raw.coldMs,
    ])
      expect(finitePositive(v)).toBe(true);
    for (const g of raw.gapBeforeMs) {
      expect(g).toBeGreaterThanOrEqual(config.gapMs[0]);
      expect(g).toBeLessThanOrEqual(config.gapMs[1]);
    }
    expect(raw.loadavgAtEnd).toHaveLength(3);
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${BENCH_RUN_LABEL}=${raw.runId}`] },
    });
    expect(left).toEqual([]);
  });

  it('checks both targets and writes JSON and markdown', async () => {
    const analysis = analyzeSessions(raw);
    expect(analysis.targets.map((t) => t.id)).toEqual(['call-p50', 'call-p99']);
    for (const t of analysis.targets) expect(typeof t.pass).toBe('boolean');
    expect(analysis.callMs.n).toBe(config.rounds);
    const dir = await mkdtemp(join(tmpdir(), 'sessions-smoke-'));
    try {
      const files = await writeSessions(dir, raw, analysis);
      expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual([
        'sessions.json',
        'sessions.md',
      ]);
      const json = JSON.parse(await readFile(join(dir, 'sessions.json'), 'utf8')) as SessionsRaw & {
        analysis: { targets: unknown[] };
      };
      expect(json.callMs).toHaveLength(config.rounds);
      expect(json.analysis.targets).toHaveLength(2);
      expect(await readFile(join(dir, 'sessions.md'), 'utf8')).toContain('## Targets');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Keeps `npm run bench -- --outputs` working: one open against one cold import, two plot and frame round trips
 * on the data-science image, every part present and written. Timing is the benchmark's, never asserted here.
 */
describe('outputs benchmark (a few calls, structure only)', () => {
  const config = outputsConfig(DATASCIENCE_IMAGE, { rounds: 2, opens: 1 });
  let raw: OutputsRaw;

  beforeAll(async () => {
    raw = await runOutputsBench(config, {
      docker,
      runId: newRunId(),
      poolPrefix: uniquePoolName('outputs-bench'),
      log: () => undefined,
    });
  }, 180_000);

  it('measures the first calls, the cold imports, the plot and frame round trips, and leaves nothing', async () => {
    expect(raw.firstCallMs).toHaveLength(config.opens);
    expect(raw.coldImportMs).toHaveLength(config.opens);
    expect(raw.coldTotalMs).toHaveLength(config.opens);
    expect(raw.plotMs).toHaveLength(config.rounds);
    expect(raw.frameMs).toHaveLength(config.rounds);
    for (const v of [
      ...raw.firstCallMs,
      ...raw.coldImportMs,
      ...raw.plotMs,
      ...raw.frameMs,
      raw.imageBytes,
    ])
      expect(finitePositive(v)).toBe(true);
    for (const b of raw.plotPngBytes) expect(b).toBeGreaterThan(1000);
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${BENCH_RUN_LABEL}=${raw.runId}`] },
    });
    expect(left).toEqual([]);
    const analysis = analyzeOutputs(raw);
    expect(typeof analysis.target.pass).toBe('boolean');
    const dir = await mkdtemp(join(tmpdir(), 'outputs-smoke-'));
    try {
      const files = await writeOutputs(dir, raw, analysis);
      expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual([
        'outputs.json',
        'outputs.md',
      ]);
      expect(await readFile(join(dir, 'outputs.md'), 'utf8')).toContain('## Target');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
