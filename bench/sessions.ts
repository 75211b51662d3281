/**
 * The sessions benchmark (issue 17): `npm run bench -- --sessions [--rounds N] [--gap-ms 50-250] [--opens N]
 * [--out <dir>] [--image <ref>]` (about two minutes; without `--out` it writes to bench/results/tmp/sessions/).
 *
 * One session on a pool of the runner transport: `runCode('x = 0')`, then `rounds` calls of `runCode('x += 1')`,
 * each after an idle gap drawn uniformly from `gapMs` (agents think between calls), and, in the same minutes, the
 * raw `docker exec` floor of the same snippet (`python3 -c 'x = 1; x += 1'` into a running hardened container, no
 * pool): one floor exec after every `floorEvery` calls, itself after an idle gap of the same kind. Every call's
 * result is checked (exit 0, no error, no timeout, stateLost false, executionCount one more than the previous;
 * at the end `print(x)` gives the number of calls): a wrong result fails the benchmark, it is never a sample.
 * Then `opens` times, with the pool settled: `openSession()` (a warm hand-out), its first call, close; and a
 * cold baseline next to it: raw create + start + the first exec of the snippet. Reports p50/p90/p99 of the call
 * round trip (host wall time around runCode) and of the result's durationMs, their ratios to the floor p50,
 * the targets (round trip p50 <= 0.03x, p99 <= 0.1x the floor p50), the machine's load and CPU count. Writes
 * sessions.json (every sample) and sessions.md. Reported, never asserted.
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
import { mulberry32, quantiles, round, type Quantiles } from './stats';

/** Issue 17's targets: the call round trip against the raw exec floor's p50 of the same run. */
export const SESSION_TARGETS = { p50: 0.03, p99: 0.1 };

export const FLOOR_CMD = ['python3', '-c', 'x = 1; x += 1'];

export interface SessionsConfig {
  image: string;
  /** Measured `runCode('x += 1')` calls (after `warmup` unmeasured ones). */
  rounds: number;
  warmup: number;
  /** The idle gap before each call and each floor exec, uniform in [min, max] ms. */
  gapMs: [number, number];
  /** One floor exec after every this many calls. */
  floorEvery: number;
  /** openSession() samples (each closed after, the pool settled before). */
  opens: number;
  /** Cold create + start + first exec samples (interleaved with the opens). */
  cold: number;
  seed: number;
}

export function sessionsConfig(
  image: string,
  overrides: Partial<SessionsConfig> = {},
): SessionsConfig {
  return {
    image,
    rounds: 300,
    warmup: 3,
    gapMs: [50, 250],
    floorEvery: 5,
    opens: 20,
    cold: 10,
    seed: 17,
    ...overrides,
  };
}

/** `--gap-ms 50-250` (uniform range) or `--gap-ms 100` (fixed). */
export function parseGap(text: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || hi < lo)
    throw new Error(`--gap-ms takes MIN-MAX or MS (ms), got ${JSON.stringify(text)}`);
  return [lo, hi];
}

export interface SessionsRaw {
  config: SessionsConfig;
  runId: string;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  engine: string;
  host: { cpus: number; cpuModel: string; kernel: string };
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
  /** Host wall time around each measured runCode('x += 1'). */
  callMs: number[];
  /**
   * The same call in a second session whose pool has `directChannel: false` (the runner's frames over the
   * engine's attach stream), alternated with the first one's calls: the baseline of the direct channel.
   */
  attachCallMs: number[];
  /** The same calls' result.durationMs (the pool's own measure of the call). */
  durationMs: number[];
  /** The gap slept before each measured call. */
  gapBeforeMs: number[];
  /** Raw docker exec of FLOOR_CMD into a running container, interleaved with the calls. */
  floorMs: number[];
  /** The value of x at the end (print(x)): warmup + rounds. */
  finalX: number;
  openMs: number[];
  /** The first runCode('x = 0') of each opened session. */
  firstCallMs: number[];
  /** Raw create + start + first exec of FLOOR_CMD (the container removed after, not counted). */
  coldMs: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A session call that did not do what it was asked: the benchmark fails. */
function checkCall(r: CodeResult, what: string, count: number): void {
  const wrong: string[] = [];
  if (r.exitCode !== 0) wrong.push(`exit ${r.exitCode}`);
  if (r.error) wrong.push(`error ${r.error.name}: ${r.error.value}`);
  if (r.timedOut) wrong.push('timedOut');
  if (r.interrupted) wrong.push('interrupted');
  if (r.stateLost) wrong.push('stateLost');
  if (r.oomKilled) wrong.push('oomKilled');
  if (r.transport !== 'runner') wrong.push(`transport ${r.transport}`);
  if (r.executionCount !== count)
    wrong.push(`executionCount ${r.executionCount}, expected ${count}`);
  if (wrong.length) {
    throw new Error(
      `${what}: wrong result (${wrong.join(', ')}); stderr ${JSON.stringify(r.stderr)}`,
    );
  }
}

/** Idle slots filled, nothing created or removed (a session's container may be leased). */
async function waitQuiet(host: BenchPool, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = host.pool.stats();
    if (s.idle >= s.size && s.creating === 0 && s.destroying === 0) return;
    if (Date.now() > until) throw new Error(`pool did not settle: ${JSON.stringify(s)}`);
    await sleep(2);
  }
}

export async function runSessionsBench(
  config: SessionsConfig,
  opts: {
    docker?: Dockerode;
    runId: string;
    poolPrefix?: string;
    log?: (l: string) => void;
  },
): Promise<SessionsRaw> {
  const docker = opts.docker ?? new Dockerode();
  const log = opts.log ?? ((l: string) => console.log(l));
  const { runId } = opts;
  const labels = { [BENCH_RUN_LABEL]: runId };
  const rand = mulberry32(config.seed);
  const gap = () => config.gapMs[0] + rand() * (config.gapMs[1] - config.gapMs[0]);
  let imageEnv: string[];
  try {
    imageEnv = (await docker.getImage(config.image).inspect()).Config?.Env ?? [];
  } catch (err) {
    throw new Error(`image ${config.image} is not on the engine (${(err as Error).message})`);
  }
  const version = await docker.version();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const raw: SessionsRaw = {
    config,
    runId,
    startedAt,
    finishedAt: '',
    wallMs: 0,
    engine: `Docker ${version.Version} (API ${version.ApiVersion})`,
    host: hostInfo(),
    loadavgAtStart: loadNow(),
    loadavgAtEnd: [],
    callMs: [],
    attachCallMs: [],
    durationMs: [],
    gapBeforeMs: [],
    floorMs: [],
    finalX: NaN,
    openMs: [],
    firstCallMs: [],
    coldMs: [],
  };
  const spec = benchPoolOptions(config.image);
  // Long enough for every call of the run in one session (the default is maxExecTimeoutMs, 60 s here).
  const sessionMaxLifetimeMs = 600_000;
  let host: BenchPool | undefined;
  let attach: BenchPool | undefined;
  let floor: Dockerode.Container | undefined;
  try {
    floor = (await rawCreateStart(docker, benchSpec(spec, `${runId}-floor`, labels), imageEnv))
      .container;
    host = await startBenchPool({
      name: `${opts.poolPrefix ?? `bench-${runId}`}-sessions`,
      image: config.image,
      transport: 'runner',
      size: 2,
      maxContainers: 4,
      containerLifetimeMs: 900_000,
      maxExecTimeoutMs: 60_000,
      sessionMaxLifetimeMs,
    });
    attach = await startBenchPool({
      name: `${opts.poolPrefix ?? `bench-${runId}`}-sessions-attach`,
      image: config.image,
      transport: 'runner',
      size: 1,
      maxContainers: 2,
      containerLifetimeMs: 900_000,
      maxExecTimeoutMs: 60_000,
      sessionMaxLifetimeMs,
      directChannel: false,
    });
    const floorOnce = async () => {
      const t = performance.now();
      const f = await rawExec(docker, floor!, FLOOR_CMD);
      const ms = performance.now() - t;
      if (f.exitCode !== 0 || f.stdout || f.stderr) {
        throw new Error(`floor exec: exit ${f.exitCode}, ${JSON.stringify(f.stdout + f.stderr)}`);
      }
      return ms;
    };
    for (let i = 0; i < 3; i++) await floorOnce(); // warm-up of the floor

    log(
      `sessions: ${config.rounds} calls of runCode('x += 1') (+${config.warmup} warm-up) with gaps of ` +
        `${config.gapMs.join('-')} ms, a raw exec floor every ${config.floorEvery} calls`,
    );
    await waitSettled(host.pool, 60_000, 50);
    await waitSettled(attach.pool, 60_000, 50);
    const session = await host.pool.openSession({ maxLifetimeMs: sessionMaxLifetimeMs });
    const viaAttach = await attach.pool.openSession({ maxLifetimeMs: sessionMaxLifetimeMs });
    try {
      await waitQuiet(host); // the refill of the session's slot done
      await waitQuiet(attach);
      checkCall(await session.runCode('x = 0'), "runCode('x = 0')", 1);
      checkCall(await viaAttach.runCode('x = 0'), "runCode('x = 0') (attach stream)", 1);
      let count = 1;
      const total = config.warmup + config.rounds;
      for (let i = 0; i < total; i++) {
        const g = gap();
        await sleep(g);
        const t = performance.now();
        const r = await session.runCode('x += 1');
        const ms = performance.now() - t;
        checkCall(r, `call ${i + 1} of ${total}`, ++count);
        await sleep(gap());
        const ta = performance.now();
        const ra = await viaAttach.runCode('x += 1');
        const msa = performance.now() - ta;
        checkCall(ra, `call ${i + 1} of ${total} (attach stream)`, count);
        if (i >= config.warmup) {
          raw.callMs.push(ms);
          raw.attachCallMs.push(msa);
          raw.durationMs.push(r.durationMs);
          raw.gapBeforeMs.push(g);
          if ((i - config.warmup + 1) % config.floorEvery === 0) {
            await sleep(gap());
            raw.floorMs.push(await floorOnce());
          }
        }
      }
      const end = await session.runCode('print(x)');
      checkCall(end, 'print(x)', ++count);
      raw.finalX = Number(end.stdout.trim());
      if (raw.finalX !== total) {
        throw new Error(`x is ${JSON.stringify(end.stdout)} after ${total} calls of x += 1`);
      }
      // What was measured went where it says: the direct channel in one pool, the attach stream in the other.
      const direct = (host.driver as { directChannels?: { disabledBecause: string | null } })
        .directChannels;
      if (!direct || direct.disabledBecause !== null) {
        throw new Error(
          `the session pool's runners did not use the direct channel: ${direct?.disabledBecause}`,
        );
      }
    } finally {
      await session.close();
      await viaAttach.close();
    }

    log(
      `openSession(): ${config.opens} opens on a settled pool, each closed after; ${Math.min(config.cold, config.opens)} cold ` +
        'create + start + exec',
    );
    for (let i = 0; i < config.opens; i++) {
      if (i < config.cold) {
        const t = performance.now();
        const { container } = await rawCreateStart(
          docker,
          benchSpec(spec, `${runId}-cold-${i}`, labels),
          imageEnv,
        );
        try {
          const f = await rawExec(docker, container, FLOOR_CMD);
          raw.coldMs.push(performance.now() - t);
          if (f.exitCode !== 0) throw new Error(`cold exec: exit ${f.exitCode}`);
        } finally {
          await rawRemove(docker, container.id);
        }
      }
      await waitSettled(host.pool, 60_000, 50);
      let t = performance.now();
      let s: Session | undefined;
      try {
        s = await host.pool.openSession();
        raw.openMs.push(performance.now() - t);
        t = performance.now();
        const r = await s.runCode('x = 0');
        raw.firstCallMs.push(performance.now() - t);
        checkCall(r, `first call of session ${i + 1}`, 1);
      } finally {
        await s?.close();
      }
    }
  } finally {
    await host?.close().catch(() => undefined);
    await attach?.close().catch(() => undefined);
    if (floor) await rawRemove(docker, floor.id).catch(() => undefined);
    const left = await removeBenchContainers(docker, runId).catch(() => 0);
    if (left) log(`removed ${left} leftover bench container(s)`);
  }
  raw.loadavgAtEnd = loadNow();
  raw.finishedAt = new Date().toISOString();
  raw.wallMs = performance.now() - t0;
  return raw;
}

export interface SessionsTarget {
  id: 'call-p50' | 'call-p99';
  what: string;
  ratio: number;
  target: number;
  pass: boolean;
}

export interface SessionsAnalysis {
  floorMs: Quantiles;
  callMs: Quantiles;
  /** The alternated calls of the attach-stream session (directChannel false). */
  attachCallMs: Quantiles;
  attachOverFloor: { p50: number; p90: number; p99: number };
  /** Direct channel p50 over the attach stream's p50. */
  directOverAttach: number;
  durationMs: Quantiles;
  openMs: Quantiles;
  firstCallMs: Quantiles;
  /** openSession() plus its first call, per sample (the interpreter starts on the first call). */
  openPlusFirstCallMs: Quantiles;
  coldMs: Quantiles;
  /** Each call quantile over the floor's p50. */
  callOverFloor: { p50: number; p90: number; p99: number };
  durationOverFloor: { p50: number; p90: number; p99: number };
  openOverCold: number;
  targets: SessionsTarget[];
}

export function analyzeSessions(raw: SessionsRaw): SessionsAnalysis {
  const floorMs = quantiles(raw.floorMs);
  const callMs = quantiles(raw.callMs);
  const durationMs = quantiles(raw.durationMs);
  const openMs = quantiles(raw.openMs);
  const coldMs = quantiles(raw.coldMs);
  const over = (q: Quantiles) => ({
    p50: round(q.p50 / floorMs.p50, 4),
    p90: round(q.p90 / floorMs.p50, 4),
    p99: round(q.p99 / floorMs.p50, 4),
  });
  const callOverFloor = over(callMs);
  const attachCallMs = quantiles(raw.attachCallMs ?? []);
  return {
    floorMs,
    callMs,
    attachCallMs,
    attachOverFloor: over(attachCallMs),
    directOverAttach: round(callMs.p50 / attachCallMs.p50, 3),
    durationMs,
    openMs,
    firstCallMs: quantiles(raw.firstCallMs),
    openPlusFirstCallMs: quantiles(raw.openMs.map((o, i) => o + raw.firstCallMs[i])),
    coldMs,
    callOverFloor,
    durationOverFloor: over(durationMs),
    openOverCold: round(openMs.p50 / coldMs.p50, 3),
    targets: [
      {
        id: 'call-p50',
        what: "runCode('x += 1') round trip p50 / raw exec floor p50",
        ratio: callOverFloor.p50,
        target: SESSION_TARGETS.p50,
        pass: callOverFloor.p50 <= SESSION_TARGETS.p50,
      },
      {
        id: 'call-p99',
        what: "runCode('x += 1') round trip p99 / raw exec floor p50",
        ratio: callOverFloor.p99,
        target: SESSION_TARGETS.p99,
        pass: callOverFloor.p99 <= SESSION_TARGETS.p99,
      },
    ],
  };
}

const verdict = (t: SessionsTarget) =>
  `${t.what}: ${t.ratio}x (target <= ${t.target}x) ${t.pass ? 'PASS' : 'FAIL'}`;

export function sessionsSummary(raw: SessionsRaw, an: SessionsAnalysis): string {
  return [
    `sessions, ${an.callMs.n} calls, ${an.floorMs.n} floor samples, ${raw.host.cpus} CPUs, load ` +
      `${raw.loadavgAtStart.join(' ')} -> ${raw.loadavgAtEnd.join(' ')}:`,
    `  floor (raw exec) p50 ${an.floorMs.p50} ms, p99 ${an.floorMs.p99} ms`,
    `  runCode round trip p50 ${an.callMs.p50} ms, p90 ${an.callMs.p90}, p99 ${an.callMs.p99}, max ${an.callMs.max}`,
    `  result.durationMs p50 ${an.durationMs.p50} ms, p99 ${an.durationMs.p99}`,
    `  the same over the attach stream (directChannel false, alternated) p50 ${an.attachCallMs.p50} ms, p99 ` +
      `${an.attachCallMs.p99} (${an.attachOverFloor.p50}x / ${an.attachOverFloor.p99}x the floor; direct / attach ` +
      `p50 ${an.directOverAttach})`,
    `  openSession p50 ${an.openMs.p50} ms, p90 ${an.openMs.p90}; + first call p50 ${an.openPlusFirstCallMs.p50} ms ` +
      `(cold create+start+exec p50 ${an.coldMs.p50} ms)`,
    ...an.targets.map((t) => `  ${verdict(t)}`),
  ].join('\n');
}

export function sessionsMarkdown(raw: SessionsRaw, an: SessionsAnalysis): string {
  const c = raw.config;
  const row = (what: string, q: Quantiles, ratio?: { p50: number; p90: number; p99: number }) =>
    `| ${what} | ${q.n} | ${q.p50} | ${q.p90} | ${q.p99} | ${q.max} | ${ratio ? `${ratio.p50} / ${ratio.p90} / ${ratio.p99}` : ''} |`;
  const one = {
    p50: 1,
    p90: round(an.floorMs.p90 / an.floorMs.p50, 3),
    p99: round(an.floorMs.p99 / an.floorMs.p50, 3),
  };
  return [
    '# Sessions: runCode round trip against the raw exec floor',
    '',
    `\`npm run bench -- --sessions --rounds ${c.rounds} --gap-ms ${c.gapMs.join('-')} --opens ${c.opens}\`, ` +
      `${raw.startedAt}, ${(raw.wallMs / 1000).toFixed(0)} s; ${raw.engine}; ${raw.host.cpus} CPUs ` +
      `(${raw.host.cpuModel}), Linux ${raw.host.kernel}; load ${raw.loadavgAtStart.join(' ')} at the start, ` +
      `${raw.loadavgAtEnd.join(' ')} at the end; image ${c.image}.`,
    '',
    `One session (runner transport): \`runCode('x = 0')\`, then ${c.rounds} calls of \`runCode('x += 1')\` ` +
      `(+${c.warmup} warm-up), each after an idle gap uniform in ${c.gapMs.join('-')} ms; every ` +
      `${c.floorEvery} calls, after a gap of the same kind, one raw \`docker exec\` of ` +
      `\`python3 -c 'x = 1; x += 1'\` into a running hardened container (the floor, no pool). Every result ` +
      `checked (exit 0, no error, stateLost false, executionCount +1); x = ${raw.finalX} at the end. The ` +
      "runner's frames go over its direct channel (checked); each call is followed, after a gap of the same kind, " +
      "by the same call in a second session whose pool has `directChannel: false` (the engine's attach stream): " +
      `direct / attach p50 ${an.directOverAttach}.`,
    '',
    '| what | n | p50 ms | p90 ms | p99 ms | max ms | p50 / p90 / p99 over floor p50 |',
    '|---|---|---|---|---|---|---|',
    row("raw exec of `python3 -c 'x = 1; x += 1'` (floor, no pool)", an.floorMs, one),
    row("`runCode('x += 1')` round trip (host wall time)", an.callMs, an.callOverFloor),
    row("`runCode('x += 1')` result.durationMs", an.durationMs, an.durationOverFloor),
    row(
      'the same round trip over the attach stream (`directChannel: false`, alternated)',
      an.attachCallMs,
      an.attachOverFloor,
    ),
    row('`openSession()` on a settled pool (warm hand-out)', an.openMs),
    row("first `runCode('x = 0')` of a fresh session", an.firstCallMs),
    row('`openSession()` + its first call', an.openPlusFirstCallMs),
    row('cold: raw create + start + first exec of the snippet', an.coldMs),
    '',
    `openSession p50 is ${an.openOverCold}x the cold create + start + first exec p50; openSession + its first ` +
      `call p50 ${round(an.openPlusFirstCallMs.p50 / an.coldMs.p50, 3)}x.`,
    '',
    '## Targets',
    '',
    ...an.targets.map((t) => `- ${verdict(t)}`),
    '',
  ].join('\n');
}

export function writeSessions(
  dir: string,
  raw: SessionsRaw,
  an: SessionsAnalysis,
): Promise<string[]> {
  return writeRunFiles(dir, 'sessions', raw, an, sessionsMarkdown(raw, an));
}
