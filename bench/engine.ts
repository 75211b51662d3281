/**
 * Raw engine operations with dockerode, no pool: what a user writes without it. The containers are the pool's
 * own hardened containers (toCreateOptions(), the same spec the pool builds), labelled for the benchmark
 * instead of the pool.
 */
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import Dockerode from 'dockerode';
import { containerSpecOf, resolvePoolOptions } from '../src/container-pool/config';
import type { ContainerSpec } from '../src/container-pool/engine/container-driver.interface';
import { toCreateOptions } from '../src/container-pool/engine/docker/docker-create-options';
import { execMainProcess } from '../src/container-pool/transport/exec/exec.transport';
import type { ResolvedContainerPoolOptions } from '../src/container-pool/interfaces/container-pool-options.interface';

/**
 * Every container the benchmark creates outside the pool carries this label, with the run's id, so that a run
 * removes exactly its own leftovers. (The tests add io.container-pool.test=bench for their leak check; a
 * benchmark run from the command line does not, so that a test run's teardown never removes its containers.)
 */
export const BENCH_RUN_LABEL = 'io.container-pool.bench-run';

const now = () => performance.now();

/** The container spec the pool builds from its options (containerSpecOf), with benchmark labels. */
export function benchSpec(
  o: ResolvedContainerPoolOptions,
  name: string,
  labels: Record<string, string>,
): ContainerSpec {
  return {
    ...containerSpecOf(o),
    ...execMainProcess(new Date(Date.now() + o.containerLifetimeMs)),
    name,
    labels,
  };
}

/** The pool's resolved options for the benchmark image (also what the raw containers are built from). */
export function benchPoolOptions(image: string): ResolvedContainerPoolOptions {
  // A bench container that outlives a crashed run kills itself after 15 minutes (its lifeline's timeout).
  return resolvePoolOptions({
    image,
    pullPolicy: 'never',
    containerLifetimeMs: 900_000,
    maxExecTimeoutMs: 60_000,
  });
}

export interface RawExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** exec create, exec start (until the stream is there), stream (until it ended), inspect (exit code). */
  phases: { execCreate: number; execStart: number; stream: number; inspect: number };
  /** How many extra inspects were needed because the engine still reported the exec as running. */
  extraInspects: number;
}

class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
    this.chunks.push(chunk);
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/**
 * One exec the plain way: create, start (hijacked, no stdin), read stdout/stderr to the end, inspect for the
 * exit code (again while the engine still says running).
 */
export async function rawExec(
  docker: Dockerode,
  container: Dockerode.Container,
  cmd: string[],
): Promise<RawExecResult> {
  const t0 = now();
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  });
  const t1 = now();
  const stream = await exec.start({
    hijack: true,
    stdin: false,
    Tty: false,
  });
  const t2 = now();
  const stdout = new Collect();
  const stderr = new Collect();
  await new Promise<void>((resolve, reject) => {
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', reject);
    docker.modem.demuxStream(stream as Readable, stdout, stderr);
  });
  stream.destroy();
  const t3 = now();
  let info = await exec.inspect();
  let extraInspects = 0;
  while (info.Running && extraInspects < 1000) {
    extraInspects++;
    info = await exec.inspect();
  }
  const t4 = now();
  return {
    exitCode: info.ExitCode ?? null,
    stdout: stdout.text(),
    stderr: stderr.text(),
    phases: { execCreate: t1 - t0, execStart: t2 - t1, stream: t3 - t2, inspect: t4 - t3 },
    extraInspects,
  };
}

/** createContainer with the pool's hardened options (`imageEnv`: the image's ENV, unset as the pool does). */
export async function rawCreate(
  docker: Dockerode,
  spec: ContainerSpec,
  imageEnv: string[] = [],
): Promise<Dockerode.Container> {
  return docker.createContainer(toCreateOptions(spec, imageEnv));
}

/** remove({ force: true }) as the pool does it; 404 / 409 (gone, removal in progress) count as removed. */
export async function rawRemove(docker: Dockerode, idOrName: string): Promise<void> {
  try {
    await docker.getContainer(idOrName).remove({ force: true, v: true });
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== 404 && status !== 409) throw err;
  }
}

/** create + start; returns the container and the two phase times. */
export async function rawCreateStart(
  docker: Dockerode,
  spec: ContainerSpec,
  imageEnv: string[] = [],
): Promise<{ container: Dockerode.Container; create: number; start: number }> {
  const t0 = now();
  const container = await rawCreate(docker, spec, imageEnv);
  const t1 = now();
  try {
    await container.start();
  } catch (err) {
    await rawRemove(docker, container.id).catch(() => undefined);
    throw err;
  }
  return { container, create: t1 - t0, start: now() - t1 };
}

/** Removes every container the run `runId` left behind. */
export async function removeBenchContainers(docker: Dockerode, runId: string): Promise<number> {
  const rows = await docker.listContainers({
    all: true,
    filters: { label: [`${BENCH_RUN_LABEL}=${runId}`] },
  });
  await Promise.allSettled(rows.map((r) => rawRemove(docker, r.Id)));
  return rows.length;
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function parallel<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
