/**
 * Streamed output's benchmark (issue 15), on its own (not part of the default `npm run bench`):
 *
 *   npm run bench -- --streaming [--rounds N] [--transports exec,runner] [--out <dir>] [--image <ref>]
 *
 * For `run({ code, onOutput })` of a script that prints its own clock, then sleeps 0.3 s and prints again, on
 * each transport (default both: `exec`, one docker exec per execution; `runner`, a job of the container's PID 1
 * runner over the attached stdio): the time to first byte (from the run() call to the first onOutput), and the
 * delivery delay (from the program's print to the onOutput, same host clock), against the raw exec p50 of
 * `python3 -c 'print(1)'` into a running container (the floor: no pool). Each round runs one floor exec and one
 * run() per transport, each with the pools settled (refills and removals done, then 50 ms), so that all see the
 * same minutes and none pays for another's engine work. Writes
 * streaming.json and streaming.md to the output folder (default bench/results/tmp/streaming). Reported, never
 * asserted.
 */
import 'reflect-metadata';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import Dockerode from 'dockerode';
import type { INestApplicationContext } from '@nestjs/common';
import { ContainerPoolModule } from '../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../src/container-pool/container-pool.service';
import type { TransportName } from '../src/container-pool/transport/transport.interface';
import {
  BENCH_RUN_LABEL,
  benchPoolOptions,
  benchSpec,
  rawCreateStart,
  rawExec,
  rawRemove,
} from './engine';
import { waitSettled } from './pool-host';
import { percentile, sortNumbers } from './stats';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};

const wallMs = () => performance.timeOrigin + performance.now();
const p = (values: number[], q: number) =>
  Math.round(percentile(sortNumbers(values), q) * 100) / 100;
const r3 = (v: number) => Math.round(v * 1000) / 1000;

const SCRIPT = 'import time\nprint(repr(time.time()))\ntime.sleep(0.3)\nprint("end")\n';

interface Side {
  transport: TransportName;
  app: INestApplicationContext;
  pool: ContainerPoolService;
  ttfb: number[];
  delay: number[];
  gap: number[];
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds', '40'));
  const image = arg('image', process.env.POOL_IMAGE || 'container-pool-sandbox:bookworm');
  const out = resolve(arg('out', join(__dirname, 'results', 'tmp', 'streaming')));
  const transports = arg('transports', 'exec,runner').split(',') as TransportName[];
  if (!transports.length || transports.some((t) => t !== 'exec' && t !== 'runner')) {
    throw new Error('--transports takes exec, runner or exec,runner');
  }
  const runId = `streaming-${process.pid}-${Date.now().toString(36)}`;
  const docker = new Dockerode();
  const loadStart = loadavg().map((l) => Math.round(l * 100) / 100);

  // The floor: raw execs into one running container built as the pool builds its own. Labelled by the run only:
  // a test label would let a parallel test run's teardown remove it mid-run (seen).
  const labels = { [BENCH_RUN_LABEL]: runId };
  const { container } = await rawCreateStart(
    docker,
    benchSpec(benchPoolOptions(image), `${runId}-floor`, labels),
  );
  const raw: number[] = [];
  const sides: Side[] = [];
  try {
    for (const transport of transports) {
      const app = await NestFactory.createApplicationContext(
        ContainerPoolModule.forRoot({
          name: `bench-${runId}-${transport}`,
          image,
          pullPolicy: 'never',
          size: 2,
          maxContainers: 4,
          transport,
        }),
        { logger: ['error', 'warn'] },
      );
      const pool = app.get(ContainerPoolService);
      sides.push({ transport, app, pool, ttfb: [], delay: [], gap: [] });
      await pool.initialize();
    }
    for (let i = 0; i < rounds + 3; i++) {
      // The floor too starts with every pool settled: no refill or removal of the previous round in flight.
      for (const side of sides) await waitSettled(side.pool, 30_000, 0);
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      const f = await rawExec(docker, container, ['python3', '-c', 'print(1)']);
      if (f.stdout !== '1\n') throw new Error(`floor exec printed ${JSON.stringify(f.stdout)}`);
      if (i >= 3) raw.push(performance.now() - t0);
      for (const side of sides) {
        await waitSettled(side.pool, 30_000, 50);
        const arrivals: { at: number; wall: number; text: string }[] = [];
        const t1 = performance.now();
        const r = await side.pool.run({
          code: SCRIPT,
          onOutput: (c) =>
            void arrivals.push({ at: performance.now(), wall: wallMs(), text: c.data.toString() }),
        });
        if (r.exitCode !== 0 || arrivals.length !== 2 || r.transport !== side.transport) {
          throw new Error(
            `unexpected run: exit ${r.exitCode}, ${arrivals.length} chunks, transport ${r.transport}`,
          );
        }
        if (i < 3) continue;
        side.ttfb.push(arrivals[0].at - t1);
        side.delay.push(arrivals[0].wall - Number(arrivals[0].text) * 1000);
        side.gap.push(arrivals[1].at - arrivals[0].at);
      }
    }
  } finally {
    for (const side of sides) await side.app.close().catch(() => undefined);
    await rawRemove(docker, container.id);
  }

  const rawExecMs = { p50: p(raw, 50), p90: p(raw, 90) };
  const result = {
    rounds,
    image,
    cpus: cpus().length,
    loadavgAtStart: loadStart,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    rawExecMs,
    transports: sides.map((s) => {
      const ttfbMs = { p50: p(s.ttfb, 50), p90: p(s.ttfb, 90), max: p(s.ttfb, 100) };
      const printToCallbackMs = { p50: p(s.delay, 50), p90: p(s.delay, 90), max: p(s.delay, 100) };
      return {
        transport: s.transport,
        ttfbMs,
        printToCallbackMs,
        secondChunkGapMs: { p50: p(s.gap, 50) },
        ttfbOverRawExec: r3(ttfbMs.p50 / rawExecMs.p50),
        printToCallbackOverRawExec: r3(printToCallbackMs.p50 / rawExecMs.p50),
      };
    }),
  };
  const md = [
    '# Streamed output: time to first byte, both transports',
    '',
    `\`npm run bench -- --streaming --rounds ${rounds} --transports ${transports.join(',')}\`: ${rounds} rounds ` +
      `(+3 warm-up), each one raw exec and one settled run() per transport; ${result.cpus} CPUs, load ` +
      `${result.loadavgAtStart.join(' ')} at the start, ${result.loadavg.join(' ')} at the end, image ${image}.`,
    '',
    '| transport | what | p50 ms | p90 ms | p50 / raw exec p50 |',
    '|---|---|---|---|---|',
    `| - | raw exec of \`python3 -c 'print(1)'\` (floor, no pool) | ${rawExecMs.p50} | ${rawExecMs.p90} | 1 |`,
    ...result.transports.flatMap((t) => [
      `| ${t.transport} | run({ code, onOutput }): call to first byte | ${t.ttfbMs.p50} | ${t.ttfbMs.p90} | ${t.ttfbOverRawExec} |`,
      `| ${t.transport} | program's print to onOutput (same clock) | ${t.printToCallbackMs.p50} | ${t.printToCallbackMs.p90} | ${t.printToCallbackOverRawExec} |`,
      `| ${t.transport} | gap between the two prints (the script sleeps 300 ms) | ${t.secondChunkGapMs.p50} | | |`,
    ]),
    '',
    ...result.transports.map(
      (t) =>
        `${t.transport}: time to first byte p50 ${t.ttfbOverRawExec}x the raw exec p50; print-to-callback p50 ` +
        `${t.printToCallbackOverRawExec}x (target: at most 0.1x: ${t.printToCallbackOverRawExec <= 0.1 ? 'pass' : 'FAIL'}).`,
    ),
    '',
  ].join('\n');
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'streaming.json'), JSON.stringify(result, null, 2) + '\n');
  await writeFile(join(out, 'streaming.md'), md);
  process.stdout.write(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
