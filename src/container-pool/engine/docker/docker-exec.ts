import type { Duplex, Readable } from 'node:stream';
import { Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import { ContainerLostError } from '../../errors/container-pool.errors';
import type {
  DriverContainer,
  DriverExecRequest,
  DriverExecResult,
} from '../container-driver.interface';
import { DockerDemuxer } from './docker-demux';
import { notStarted, toContainerError } from './docker-errors';

/** How much of each stream is kept to explain an exec the engine could not start (its message is short). */
const HEAD_BYTES = 2048;

/** Keeps the first HEAD_BYTES written to it. Writes complete synchronously. */
class HeadTee extends Writable {
  private readonly chunks: Buffer[] = [];
  private kept = 0;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (e?: Error | null) => void) {
    if (this.kept < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - this.kept);
      this.chunks.push(part);
      this.kept += part.length;
    }
    callback();
  }

  get head(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

const ABORTED: DriverExecResult = { exitCode: null, aborted: true };

/**
 * One `docker exec`: create, start (hijacked, the request's stdin then EOF), demultiplex stdout/stderr into the
 * caller's sinks until the stream ends (pausing the socket while a sink is behind: DockerDemuxer), then the
 * exit code. The request's signal bounds every engine call, so a
 * hung engine cannot hold the execution past its timeout.
 */
export async function dockerExec(
  modem: Dockerode['modem'],
  target: DriverContainer,
  request: DriverExecRequest,
): Promise<DriverExecResult> {
  const container = target.handle as Dockerode.Container;
  const { signal } = request;
  let exec: Dockerode.Exec;
  let stream: Duplex;
  try {
    exec = await container.exec({
      Cmd: request.cmd,
      User: request.user,
      Env: request.env,
      WorkingDir: request.workdir,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      abortSignal: signal,
    });
    stream = await exec.start({ hijack: true, stdin: true, Tty: false, abortSignal: signal });
  } catch (err) {
    if (signal.aborted) return ABORTED;
    throw toContainerError(err, target.name, 'starting the execution');
  }

  const demux = new DockerDemuxer(request.stdout, request.stderr);
  const outcome = await new Promise<'ended' | 'aborted' | Error>((resolve) => {
    const done = (how: 'ended' | 'aborted' | Error) => {
      signal.removeEventListener('abort', onAbort);
      demux.removeListener('finish', onFinish);
      stream.removeListener('close', onClose);
      stream.removeListener('error', onError);
      resolve(how);
    };
    // Ended once the demuxer handed every byte on (the consumer may be slower than the socket).
    const onFinish = () => done('ended');
    // A socket closed without its end: no more bytes will come.
    const onClose = () => {
      if (!demux.writableEnded) demux.end();
    };
    const onError = (err: Error) => done(err);
    const onAbort = () => {
      stream.unpipe(demux);
      stream.destroy();
      done('aborted');
    };
    demux.on('finish', onFinish);
    stream.on('close', onClose);
    stream.on('error', onError);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    (stream as Readable).pipe(demux);
    // The program's stdin: what the caller gave, then EOF.
    stream.on('error', () => undefined);
    if (request.stdin?.length) stream.write(request.stdin);
    stream.end();
  });
  stream.destroy();
  if (outcome === 'aborted') return ABORTED;
  // The connection broke before the output ended: what was read may be incomplete, never a success.
  if (outcome instanceof Error) throw toContainerError(outcome, target.name, 'reading the output');

  const exitCode = await waitForExitCode(exec, target, signal, () => demux.head);
  return exitCode === 'aborted' ? ABORTED : { exitCode, aborted: false };
}

/**
 * The exit code, read after the stream ended. A program that closed its output but still runs keeps
 * `Running` true: poll (cheaply, backing off) until it exits or the caller aborts.
 */
async function waitForExitCode(
  exec: Dockerode.Exec,
  target: DriverContainer,
  signal: AbortSignal,
  output: () => { stdout: Buffer; stderr: Buffer },
): Promise<number | 'aborted'> {
  let delayMs = 2;
  for (;;) {
    if (signal.aborted) return 'aborted';
    let info: Dockerode.ExecInspectInfo;
    try {
      info = await exec.inspect({ abortSignal: signal });
    } catch (err) {
      if (signal.aborted) return 'aborted';
      throw toContainerError(err, target.name, 'reading the exit code');
    }
    // Pid 0: the engine never started the program (runc refused the exec), so no code of the sandbox ran and
    // the output is the engine's own message. A program that prints the same text has a pid.
    if (!info.Running && (info as { Pid?: number }).Pid === 0)
      throw notStarted(output(), target.name);
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) {
      return info.ExitCode;
    }
    if (!info.Running) {
      throw new ContainerLostError(target.name, 'the execution ended without an exit code');
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delayMs);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
    delayMs = Math.min(delayMs * 2, 100);
  }
}

/** The memory cgroup's OOM kill counter, read by an exec (cgroup v1 memory.oom_control, v2 memory.events). */
export async function dockerOomKillCount(
  modem: Dockerode['modem'],
  target: DriverContainer,
): Promise<number | null> {
  const out = new HeadTee();
  await dockerExec(modem, target, {
    cmd: ['cat', '/sys/fs/cgroup/memory/memory.oom_control', '/sys/fs/cgroup/memory.events'],
    user: target.execUser,
    env: [],
    workdir: '/',
    stdin: null,
    stdout: out,
    stderr: new HeadTee(),
    signal: AbortSignal.timeout(5_000),
  });
  const m = /^oom_kill (\d+)$/m.exec(out.head.toString('utf8'));
  return m ? Number(m[1]) : null;
}
