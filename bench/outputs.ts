/**
 * The rich-outputs benchmark (issue 18): `npm run bench -- --outputs [--rounds N] [--opens N] [--out <dir>]`
 * (about two minutes; without `--out` it writes to bench/results/tmp/outputs/). Needs the data-science image
 * (scripts/build-sandbox-image.sh datascience; bench.sh builds it when missing).
 *
 * A pool of the data-science profile as the runnable service has it (runner transport, 1 GiB, numpy, pandas,
 * matplotlib and pyplot pre-imported):
 * - `opens` times, the pool settled before each: openSession(), its first call
 *   `runCode('import numpy, pandas, matplotlib')` (timed: host wall time), close. Interleaved, in the same
 *   minutes: a cold `python3 -c 'import numpy, pandas, matplotlib'` (raw docker exec) in a fresh hardened
 *   container of the same image (raw create + start just before; the exec timed alone, and create + start +
 *   exec). Target: first call p50 <= 0.05x the cold exec p50.
 * - `rounds` plot round trips in one warm session: a 4x3 in, 100 dpi line plot shown with plt.show(), its PNG
 *   checked (400x300, one output); and as many DataFrame round trips (a 20-row frame as the trailing expression:
 *   text/html and text/plain checked).
 * - The image's size (the engine's Size).
 * Every result is checked: a wrong one fails the benchmark, it is never a sample. Reported, never asserted.
 */
import Dockerode from 'dockerode';
import type { CodeResult, Session } from '../src/container-pool/interfaces/session.interface';
import {
  BENCH_RUN_LABEL,
  benchPoolOptions,
  benchSpec,
  rawCreateStart,
  rawExec,
  rawRemove,
  removeBenchContainers,
} from './engine';
import { hostInfo, loadNow, writeRunFiles } from './run-files';
import { startBenchPool, waitSettled, type BenchPool } from './pool-host';
import { quantiles, round, type Quantiles } from './stats';

export const DATASCIENCE_IMAGE =
  process.env.DATASCIENCE_IMAGE || 'container-pool-datascience:bookworm';
export const OUTPUTS_TARGETS = { firstCallOverColdImport: 0.05 };
export const PRELOAD = ['numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot'];
const IMPORT = 'import numpy, pandas, matplotlib';
const COLD_CMD = ['python3', '-c', IMPORT];
const PLOT =
  'import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3), dpi=100)\n' +
  'plt.plot(range(10), [i * i for i in range(10)])\nplt.show()';
const FRAME =
  'import pandas as pd\npd.DataFrame({"n": range(20), "sq": [i * i for i in range(20)], ' +
  '"name": ["row %d" % i for i in range(20)]})';

export interface OutputsConfig {
  image: string;
  rounds: number;
  opens: number;
}

export function outputsConfig(
  image: string,
  overrides: Partial<OutputsConfig> = {},
): OutputsConfig {
  return { image, rounds: 50, opens: 15, ...overrides };
}

export interface OutputsRaw {
  config: OutputsConfig;
  runId: string;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  engine: string;
  host: { cpus: number; cpuModel: string; kernel: string };
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
  imageBytes: number;
  openMs: number[];
  /** The first runCode('import numpy, pandas, matplotlib') of each session. */
  firstCallMs: number[];
  /** Raw docker exec of the same imports in a fresh container (just started). */
  coldImportMs: number[];
  /** Raw create + start + that exec. */
  coldTotalMs: number[];
  plotMs: number[];
  plotPngBytes: number[];
  frameMs: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function check(r: CodeResult, what: string, extra: (r: CodeResult) => string[] = () => []): void {
  const wrong: string[] = [];
  if (r.exitCode !== 0) wrong.push(`exit ${r.exitCode}`);
  if (r.error) wrong.push(`error ${r.error.name}: ${r.error.value}`);
  if (r.timedOut) wrong.push('timedOut');
  if (r.stateLost) wrong.push('stateLost');
  if (r.stderr) wrong.push(`stderr ${JSON.stringify(r.stderr.slice(0, 300))}`);
  if (r.outputsTruncated) wrong.push('outputsTruncated');
  wrong.push(...extra(r));
  if (wrong.length) throw new Error(`${what}: wrong result (${wrong.join(', ')})`);
}

function pngSize(png: Buffer | undefined): [number, number] {
  if (!png || png.length < 24 || png.readUInt32BE(0) !== 0x89504e47) return [0, 0];
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

export async function runOutputsBench(
  config: OutputsConfig,
  opts: { docker?: Dockerode; runId: string; poolPrefix?: string; log?: (l: string) => void },
): Promise<OutputsRaw> {
  const docker = opts.docker ?? new Dockerode();
  const log = opts.log ?? ((l: string) => console.log(l));
  const { runId } = opts;
  const labels = { [BENCH_RUN_LABEL]: runId };
  let image: Dockerode.ImageInspectInfo;
  try {
    image = await docker.getImage(config.image).inspect();
  } catch (err) {
    throw new Error(
      `image ${config.image} is not on the engine (${(err as Error).message}): ` +
        'bash scripts/build-sandbox-image.sh datascience',
    );
  }
  const imageEnv = image.Config?.Env ?? [];
  const version = await docker.version();
  const t0 = performance.now();
  const raw: OutputsRaw = {
    config,
    runId,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    wallMs: 0,
    engine: `Docker ${version.Version} (API ${version.ApiVersion})`,
    host: hostInfo(),
    loadavgAtStart: loadNow(),
    loadavgAtEnd: [],
    imageBytes: image.Size,
    openMs: [],
    firstCallMs: [],
    coldImportMs: [],
    coldTotalMs: [],
    plotMs: [],
    plotPngBytes: [],
    frameMs: [],
  };
  const spec = { ...benchPoolOptions(config.image), memoryBytes: 1024 * 1024 * 1024 };
  let host: BenchPool | undefined;
  try {
    host = await startBenchPool({
      name: `${opts.poolPrefix ?? `bench-${runId}`}-outputs`,
      image: config.image,
      transport: 'runner',
      memoryBytes: 1024 * 1024 * 1024,
      preloadModules: PRELOAD,
      size: 2,
      maxContainers: 4,
      containerLifetimeMs: 900_000,
      maxExecTimeoutMs: 60_000,
    });
    log(
      `outputs: ${config.opens} sessions' first runCode('${IMPORT}') against a cold python3 -c in a fresh ` +
        `container of ${config.image}, interleaved`,
    );
    for (let i = 0; i < config.opens + 1; i++) {
      // the cold import: a fresh hardened container of the same image, the exec timed alone and with the start
      const t = performance.now();
      const { container } = await rawCreateStart(
        docker,
        benchSpec(spec, `${runId}-cold-${i}`, labels),
        imageEnv,
      );
      try {
        const te = performance.now();
        const f = await rawExec(docker, container, COLD_CMD);
        const end = performance.now();
        if (f.exitCode !== 0) throw new Error(`cold import: exit ${f.exitCode}: ${f.stderr}`);
        if (i > 0) {
          raw.coldImportMs.push(end - te);
          raw.coldTotalMs.push(end - t);
        }
      } finally {
        await rawRemove(docker, container.id);
      }
      await waitSettled(host.pool, 120_000, 50);
      let s: Session | undefined;
      try {
        let ts = performance.now();
        s = await host.pool.openSession();
        const openMs = performance.now() - ts;
        ts = performance.now();
        const r = await s.runCode(IMPORT);
        const callMs = performance.now() - ts;
        check(r, `first call of session ${i + 1}`, (x) => (x.outputs.length ? ['outputs'] : []));
        if (i > 0) {
          raw.openMs.push(openMs);
          raw.firstCallMs.push(callMs);
        }
      } finally {
        await s?.close();
      }
    }

    log(
      `outputs: ${config.rounds} plot round trips and ${config.rounds} DataFrame round trips in one session`,
    );
    await waitSettled(host.pool, 120_000, 50);
    const s = await host.pool.openSession();
    try {
      check(await s.runCode(PLOT), 'warm-up plot');
      check(await s.runCode(FRAME), 'warm-up frame');
      for (let i = 0; i < config.rounds; i++) {
        await sleep(20);
        let t = performance.now();
        const p = await s.runCode(PLOT);
        raw.plotMs.push(performance.now() - t);
        check(p, `plot ${i + 1}`, (x) => {
          const png = x.outputs[0]?.data['image/png'];
          const [w, h] = pngSize(png);
          return x.outputs.length === 1 && w === 400 && h === 300
            ? []
            : [`outputs ${x.outputs.length}, png ${w}x${h}`];
        });
        raw.plotPngBytes.push(p.outputs[0].data['image/png']!.length);
        await sleep(20);
        t = performance.now();
        const f = await s.runCode(FRAME);
        raw.frameMs.push(performance.now() - t);
        check(f, `frame ${i + 1}`, (x) =>
          x.outputs.length === 1 &&
          x.outputs[0].type === 'result' &&
          /<table/.test(x.outputs[0].data['text/html'] ?? '') &&
          (x.outputs[0].data['text/plain'] ?? '').includes('row 19')
            ? []
            : ['not the frame'],
        );
      }
    } finally {
      await s.close();
    }
  } finally {
    await host?.close().catch(() => undefined);
    const left = await removeBenchContainers(docker, runId).catch(() => 0);
    if (left) log(`removed ${left} leftover bench container(s)`);
  }
  raw.loadavgAtEnd = loadNow();
  raw.finishedAt = new Date().toISOString();
  raw.wallMs = performance.now() - t0;
  return raw;
}

export interface OutputsAnalysis {
  imageMiB: number;
  openMs: Quantiles;
  firstCallMs: Quantiles;
  coldImportMs: Quantiles;
  coldTotalMs: Quantiles;
  plotMs: Quantiles;
  plotPngBytes: Quantiles;
  frameMs: Quantiles;
  firstCallOverColdImport: number;
  target: { what: string; ratio: number; target: number; pass: boolean };
}

export function analyzeOutputs(raw: OutputsRaw): OutputsAnalysis {
  const firstCallMs = quantiles(raw.firstCallMs);
  const coldImportMs = quantiles(raw.coldImportMs);
  const ratio = round(firstCallMs.p50 / coldImportMs.p50, 4);
  return {
    imageMiB: round(raw.imageBytes / (1024 * 1024), 1),
    openMs: quantiles(raw.openMs),
    firstCallMs,
    coldImportMs,
    coldTotalMs: quantiles(raw.coldTotalMs),
    plotMs: quantiles(raw.plotMs),
    plotPngBytes: quantiles(raw.plotPngBytes),
    frameMs: quantiles(raw.frameMs),
    firstCallOverColdImport: ratio,
    target: {
      what: `first runCode('${IMPORT}') of a warm session p50 / cold python3 -c of it in a fresh container p50`,
      ratio,
      target: OUTPUTS_TARGETS.firstCallOverColdImport,
      pass: ratio <= OUTPUTS_TARGETS.firstCallOverColdImport,
    },
  };
}

const verdict = (t: OutputsAnalysis['target']) =>
  `${t.what}: ${t.ratio}x (target <= ${t.target}x) ${t.pass ? 'PASS' : 'FAIL'}`;

export function outputsSummary(raw: OutputsRaw, an: OutputsAnalysis): string {
  return [
    `outputs, ${raw.host.cpus} CPUs, load ${raw.loadavgAtStart.join(' ')} -> ${raw.loadavgAtEnd.join(' ')}:`,
    `  image ${raw.config.image}: ${an.imageMiB} MiB`,
    `  first runCode (imports) p50 ${an.firstCallMs.p50} ms, p99 ${an.firstCallMs.p99}; cold import exec p50 ` +
      `${an.coldImportMs.p50} ms (create+start+exec ${an.coldTotalMs.p50} ms); openSession p50 ${an.openMs.p50} ms`,
    `  plot round trip p50 ${an.plotMs.p50} ms, p99 ${an.plotMs.p99} (PNG p50 ${an.plotPngBytes.p50} bytes); ` +
      `DataFrame round trip p50 ${an.frameMs.p50} ms, p99 ${an.frameMs.p99}`,
    `  ${verdict(an.target)}`,
  ].join('\n');
}

export function outputsMarkdown(raw: OutputsRaw, an: OutputsAnalysis): string {
  const c = raw.config;
  const row = (what: string, q: Quantiles) =>
    `| ${what} | ${q.n} | ${q.p50} | ${q.p90} | ${q.p99} | ${q.max} |`;
  return [
    '# Rich outputs: the data-science profile',
    '',
    `\`npm run bench -- --outputs --rounds ${c.rounds} --opens ${c.opens}\`, ${raw.startedAt}, ` +
      `${(raw.wallMs / 1000).toFixed(0)} s; ${raw.engine}; ${raw.host.cpus} CPUs (${raw.host.cpuModel}), Linux ` +
      `${raw.host.kernel}; load ${raw.loadavgAtStart.join(' ')} at the start, ${raw.loadavgAtEnd.join(' ')} at ` +
      `the end; image ${c.image} (${an.imageMiB} MiB).`,
    '',
    `A pool of the data-science profile (runner transport, 1 GiB, \`preloadModules\` ${PRELOAD.join(', ')}). ` +
      `${c.opens} times, the pool settled before each: \`openSession()\`, its first call ` +
      `\`runCode('${IMPORT}')\`, close; interleaved, a fresh hardened container of the same image (raw create + ` +
      `start) and a raw \`docker exec\` of \`python3 -c '${IMPORT}'\` in it. Then ${c.rounds} plot round trips ` +
      '(a 4x3 in, 100 dpi line plot shown with `plt.show()`: one PNG output of 400x300 checked) and as many ' +
      'DataFrame round trips (20 rows as the trailing expression: text/html and text/plain checked) in one ' +
      'session, 20 ms apart. Every result checked.',
    '',
    '| what | n | p50 ms | p90 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|',
    row(`first \`runCode('${IMPORT}')\` of a warm session`, an.firstCallMs),
    row(`cold: raw exec of \`python3 -c '${IMPORT}'\` in a fresh container`, an.coldImportMs),
    row('cold: raw create + start + that exec', an.coldTotalMs),
    row('`openSession()` on a settled pool', an.openMs),
    row('plot round trip (`plt.show()` of a 400x300 figure)', an.plotMs),
    row('DataFrame round trip (20 rows, HTML + text)', an.frameMs),
    '',
    `PNG of the plot: p50 ${an.plotPngBytes.p50} bytes.`,
    '',
    '## Target',
    '',
    `- ${verdict(an.target)}`,
    '',
  ].join('\n');
}

export function writeOutputs(dir: string, raw: OutputsRaw, an: OutputsAnalysis): Promise<string[]> {
  return writeRunFiles(dir, 'outputs', raw, an, outputsMarkdown(raw, an));
}
