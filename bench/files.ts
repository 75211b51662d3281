/**
 * The files benchmark: `npm run bench -- --files` (about a minute), on each transport (`--transports exec,runner`,
 * the default).
 *
 * 10 MiB of random bytes written into a leased container (container.files.write), then read back
 * (container.files.read) and compared, `samples` times on one container of the transport; and the same
 * 10 MiB through a whole run (`files` in, `collect` out). Reports MB/s (10^6 bytes per second) per direction:
 * p50 and the worst sample, and checks the runner transport's target (each direction at least 50 MB/s, p50).
 * It asserts nothing. Writes files.json and files.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { TransportName } from '../src/container-pool/transport/transport.interface';
import { startBenchPool } from './pool-host';
import { round, roundSummary, summarize, type Summary } from './stats';

export interface FilesConfig {
  image: string;
  transport: TransportName;
  bytes: number;
  samples: number;
}

export function filesConfig(
  image: string,
  samples = 10,
  transport: TransportName = 'exec',
): FilesConfig {
  return { image, transport, bytes: 10 * 1024 * 1024, samples };
}

/** The runner transport's target (issue #14's related issue): each direction at least this many MB/s, p50. */
export const RUNNER_FILES_TARGET_MBPS = 50;

export interface FilesRaw {
  config: FilesConfig;
  startedAt: string;
  wallMs: number;
  engine: string;
  host: string;
  writeMs: number[];
  readMs: number[];
  runMs: number[];
}

export async function runFilesBench(
  config: FilesConfig,
  opts: { docker?: Dockerode; runId: string; log?: (l: string) => void },
): Promise<FilesRaw> {
  const docker = opts.docker ?? new Dockerode();
  const log = opts.log ?? ((l: string) => console.log(l));
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const version = await docker.version();
  const host = await startBenchPool({
    name: `bench-${opts.runId}-files-${config.transport}`,
    image: config.image,
    transport: config.transport,
    size: 1,
    maxContainers: 2,
    memoryBytes: '512m',
    workdirSizeBytes: '128m',
    tmpSizeBytes: '64m',
  });
  const raw: FilesRaw = {
    config,
    startedAt,
    wallMs: 0,
    engine: `Docker ${version.Version} (API ${version.ApiVersion})`,
    host: `${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), Linux ${release()}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    writeMs: [],
    readMs: [],
    runMs: [],
  };
  try {
    log(
      `files: ${config.samples} x ${config.bytes} bytes written then read back, ${config.transport} transport`,
    );
    const running = host.pool.stats().transport;
    if (running !== config.transport) {
      throw new Error(`the pool runs on ${running}, expected ${config.transport}`);
    }
    await host.pool.withContainer(async (c) => {
      for (let i = 0; i < config.samples; i++) {
        const data = randomBytes(config.bytes);
        let t = performance.now();
        await c.files.write('bench.bin', data);
        raw.writeMs.push(performance.now() - t);
        t = performance.now();
        const back = await c.files.read('bench.bin');
        raw.readMs.push(performance.now() - t);
        if (!back.equals(data))
          throw new Error('the bytes read back differ from the bytes written');
      }
    });
    for (let i = 0; i < Math.min(config.samples, 5); i++) {
      const data = randomBytes(config.bytes);
      const t = performance.now();
      const r = await host.pool.run({
        cmd: ['true'],
        files: [{ path: 'in.bin', content: data }],
        collect: ['in.bin'],
      });
      raw.runMs.push(performance.now() - t - r.queuedMs);
      if (!r.files?.[0]?.content.equals(data)) throw new Error('run: the collected bytes differ');
      if (r.transport !== config.transport) throw new Error(`run: ran on ${r.transport}`);
    }
  } finally {
    await host.close();
  }
  raw.wallMs = performance.now() - t0;
  return raw;
}

export interface FilesAnalysis {
  writeMBps: { p50: number; worst: number };
  readMBps: { p50: number; worst: number };
  writeMs: Summary;
  readMs: Summary;
  runMs: Summary;
}

export function analyzeFiles(raw: FilesRaw): FilesAnalysis {
  const mbps = (ms: number) => round(raw.config.bytes / 1e6 / (ms / 1000), 1);
  const w = summarize(raw.writeMs);
  const r = summarize(raw.readMs);
  return {
    writeMBps: { p50: mbps(w.p50), worst: mbps(w.max) },
    readMBps: { p50: mbps(r.p50), worst: mbps(r.max) },
    writeMs: roundSummary(w),
    readMs: roundSummary(r),
    runMs: roundSummary(summarize(raw.runMs)),
  };
}

export interface FilesRun {
  raw: FilesRaw;
  analysis: FilesAnalysis;
}

/** Transport of a run (files.json written before the runner transport existed has none: exec). */
const transportOf = (raw: FilesRaw) => raw.config.transport ?? 'exec';

function runnerTarget(runs: FilesRun[]): string[] {
  const r = runs.find((x) => transportOf(x.raw) === 'runner');
  if (!r) return [];
  const ok = (v: number) => (v >= RUNNER_FILES_TARGET_MBPS ? 'pass' : 'FAIL');
  return [
    `runner transport, each direction at least ${RUNNER_FILES_TARGET_MBPS} MB/s (p50): write ` +
      `${r.analysis.writeMBps.p50} MB/s [${ok(r.analysis.writeMBps.p50)}], read ${r.analysis.readMBps.p50} MB/s ` +
      `[${ok(r.analysis.readMBps.p50)}]`,
  ];
}

export function filesSummary(runs: FilesRun[]): string {
  return [...runs.map((r) => filesSummaryOne(r.raw, r.analysis)), ...runnerTarget(runs)].join('\n');
}

function filesSummaryOne(raw: FilesRaw, an: FilesAnalysis): string {
  return [
    `files, ${raw.config.bytes} bytes, ${transportOf(raw)} transport, ${raw.config.samples} samples:`,
    `  write ${an.writeMBps.p50} MB/s p50 (worst ${an.writeMBps.worst}), ${an.writeMs.p50} ms p50`,
    `  read  ${an.readMBps.p50} MB/s p50 (worst ${an.readMBps.worst}), ${an.readMs.p50} ms p50`,
    `  run({ files: 10 MiB, collect }) of \`true\`: ${an.runMs.p50} ms p50 (${raw.runMs.length} runs)`,
  ].join('\n');
}

export async function writeFiles(dir: string, runs: FilesRun[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'files.json');
  const md = join(dir, 'files.md');
  await writeFile(json, JSON.stringify({ runs }, null, 2) + '\n');
  const first = runs[0].raw;
  const wall = runs.reduce((a, r) => a + r.raw.wallMs, 0);
  const rows = runs.flatMap(({ raw, analysis: an }) => {
    const t = transportOf(raw);
    return [
      `| ${t} | container.files.write | ${an.writeMBps.p50} | ${an.writeMBps.worst} | ${an.writeMs.p50} | ${an.writeMs.p95} |`,
      `| ${t} | container.files.read | ${an.readMBps.p50} | ${an.readMBps.worst} | ${an.readMs.p50} | ${an.readMs.p95} |`,
      `| ${t} | run({ files, collect }) of \`true\` (whole run) | | | ${an.runMs.p50} | ${an.runMs.p95} |`,
    ];
  });
  await writeFile(
    md,
    [
      '# Files benchmark',
      '',
      `\`npm run bench -- --files\`, ${first.startedAt}, ${(wall / 1000).toFixed(0)} s; ${first.engine}; ` +
        runs.map((r) => `${transportOf(r.raw)}: ${r.raw.host}`).join('; ') +
        `. 10 MiB (${first.config.bytes} bytes) of random bytes, ${first.config.samples} samples per transport.`,
      '',
      '| transport | 10 MiB | MB/s p50 | MB/s worst | ms p50 | ms p95 |',
      '|---|---|---|---|---|---|',
      ...rows,
      '',
      ...runnerTarget(runs).map((l) => `Target: ${l}.`),
      '',
    ].join('\n'),
  );
  return [json, md];
}
