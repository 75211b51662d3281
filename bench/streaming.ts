/**
 * Streamed output's benchmark (issue 15), on its own (not part of the default `npm run bench`):
 *
 *   npm run bench -- --streaming [--rounds N] [--out <dir>] [--image <ref>]
 *
 * For `run({ code, onOutput })` of a script that prints its own clock, then sleeps 0.3 s and prints again:
 * the time to first byte (from the run() call to the first onOutput), and the delivery delay (from the
 * program's print to the onOutput, same host clock), against the raw exec p50 of `python3 -c 'print(1)'`
 * into a running container (the floor: no pool). Writes streaming.json and streaming.md to the output folder
 * (default bench/results/tmp/streaming). Reported, never asserted.
 */
import 'reflect-metadata';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import Dockerode from 'dockerode';
import { ContainerPoolModule } from '../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../src/container-pool/container-pool.service';
import {
  BENCH_RUN_LABEL,
  benchPoolOptions,
  benchSpec,
  rawCreateStart,
  rawExec,
  rawRemove,
} from './engine';
import { percentile, sortNumbers } from './stats';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};

const wallMs = () => performance.timeOrigin + performance.now();
const p = (values: number[], q: number) =>
  Math.round(percentile(sortNumbers(values), q) * 100) / 100;

const SCRIPT = 'import time\nprint(repr(time.time()))\ntime.sleep(0.3)\nprint("end")\n';

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '40'));
  const image = arg('image', process.env.POOL_IMAGE || 'container-pool-sandbox:bookworm');
  const out = resolve(arg('out', join(__dirname, 'results', 'tmp', 'streaming')));
  const runId = `streaming-${process.pid}-${Date.now().toString(36)}`;
  const docker = new Dockerode();

  // The floor: raw execs into one running container built as the pool builds its own.
  const labels = { [BENCH_RUN_LABEL]: runId, 'io.container-pool.test': 'bench-streaming' };
  const { container } = await rawCreateStart(
    docker,
    benchSpec(benchPoolOptions(image), `${runId}-floor`, labels),
  );
  const raw: number[] = [];
  try {
    for (let i = 0; i < rounds + 3; i++) {
      const t0 = performance.now();
      const r = await rawExec(docker, container, ['python3', '-c', 'print(1)']);
      if (r.stdout !== '1\n') throw new Error(`floor exec printed ${JSON.stringify(r.stdout)}`);
      if (i >= 3) raw.push(performance.now() - t0);
    }
  } finally {
    await rawRemove(docker, container.id);
  }

  const app = await NestFactory.createApplicationContext(
    ContainerPoolModule.forRoot({
      name: `bench-${runId}`,
      image,
      pullPolicy: 'never',
      size: 2,
      maxContainers: 4,
    }),
    { logger: ['error', 'warn'] },
  );
  app.enableShutdownHooks();
  const pool = app.get(ContainerPoolService);
  await pool.initialize();
  const ttfb: number[] = [];
  const delay: number[] = [];
  const gap: number[] = [];
  try {
    for (let i = 0; i < rounds + 3; i++) {
      const arrivals: { at: number; wall: number; text: string }[] = [];
      const t0 = performance.now();
      const r = await pool.run({
        code: SCRIPT,
        onOutput: (c) =>
          void arrivals.push({ at: performance.now(), wall: wallMs(), text: c.data.toString() }),
      });
      if (r.exitCode !== 0 || arrivals.length !== 2) {
        throw new Error(`unexpected run: exit ${r.exitCode}, ${arrivals.length} chunks`);
      }
      if (i < 3) continue;
      ttfb.push(arrivals[0].at - t0);
      delay.push(arrivals[0].wall - Number(arrivals[0].text) * 1000);
      gap.push(arrivals[1].at - arrivals[0].at);
    }
  } finally {
    await app.close();
  }

  const result = {
    rounds,
    image,
    cpus: cpus().length,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    rawExecMs: { p50: p(raw, 50), p90: p(raw, 90) },
    ttfbMs: { p50: p(ttfb, 50), p90: p(ttfb, 90) },
    printToCallbackMs: { p50: p(delay, 50), p90: p(delay, 90), max: p(delay, 100) },
    secondChunkGapMs: { p50: p(gap, 50) },
  };
  const ratio = Math.round((result.printToCallbackMs.p50 / result.rawExecMs.p50) * 1000) / 1000;
  const md = [
    '# Streamed output: time to first byte (exec transport)',
    '',
    `${rounds} rounds, ${result.cpus} CPUs, load ${result.loadavg.join(' ')}, image ${image}.`,
    '',
    '| what | p50 ms | p90 ms |',
    '|---|---|---|',
    `| raw exec of \`python3 -c 'print(1)'\` (floor, no pool) | ${result.rawExecMs.p50} | ${result.rawExecMs.p90} |`,
    `| run({ code, onOutput }): call to first byte | ${result.ttfbMs.p50} | ${result.ttfbMs.p90} |`,
    `| program's print to onOutput (same clock) | ${result.printToCallbackMs.p50} | ${result.printToCallbackMs.p90} |`,
    `| gap between the two prints (the script sleeps 300 ms) | ${result.secondChunkGapMs.p50} | |`,
    '',
    `Print-to-callback p50 is ${ratio}x the raw exec p50 (target: at most 0.1x).`,
    '',
  ].join('\n');
  await mkdir(out, { recursive: true });
  await writeFile(
    join(out, 'streaming.json'),
    JSON.stringify({ ...result, ratio }, null, 2) + '\n',
  );
  await writeFile(join(out, 'streaming.md'), md);
  process.stdout.write(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
