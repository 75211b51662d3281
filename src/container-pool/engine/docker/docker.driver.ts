import type { Duplex, Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { BACKOFF_INITIAL_MS } from '../../container-pool.constants';
import {
  ContainerCreateError,
  ContainerLostError,
  ContainerPoolError,
  ContainerRemoveError,
  ImageUnavailableError,
  InvalidRequestError,
} from '../../errors/container-pool.errors';
import type { PullPolicy } from '../../interfaces/container-pool-options.interface';
import type {
  ContainerDriver,
  ContainerSpec,
  DriverContainer,
  DriverExecRequest,
  DriverExecResult,
  EngineEventHandlers,
  EngineEventType,
  EngineInfo,
  EventSubscription,
  ListedContainer,
} from '../container-driver.interface';
import {
  describe,
  isConnectionError,
  statusOf,
  toContainerError,
  toCreateError,
  toEngineError,
} from './docker-errors';
import { CappedSink } from '../../execution/output-sink';

const WATCHED_EVENTS: EngineEventType[] = ['oom', 'die', 'destroy'];
const EVENT_RECONNECT_MAX_MS = 5_000;
/** Deadline of the engine's quick calls (ping, info, version, list, inspect). */
const ENGINE_CALL_TIMEOUT_MS = 15_000;

/** `{ abortSignal }` for a quick engine call: the caller's signal, else the default deadline. */
function deadline(signal?: AbortSignal): { abortSignal: AbortSignal } {
  return { abortSignal: signal ?? AbortSignal.timeout(ENGINE_CALL_TIMEOUT_MS) };
}
/** A removal the engine has not finished by then is reported as failed (the engine is hung). */
const REMOVE_TIMEOUT_MS = 30_000;

/**
 * The user of the container's main process (docker-init and the lifeline): root inside the container, with no
 * capability at all (CapDrop ALL, empty bounding set). Every execution runs as the sandbox user instead, so the
 * sandboxed code can neither signal, ptrace nor open /proc/<pid>/fd of its lifeline (different uid, no
 * CAP_KILL/CAP_SYS_PTRACE): see docs/security.md.
 */
export const LIFELINE_USER = '0:0';

/** How PID 1's child waits on its lifeline: stdin held open by the owner, and a hard lifetime. */
export function lifelineCommand(lifetimeMs: number): string[] {
  return ['timeout', '-s', 'KILL', String(Math.max(1, Math.ceil(lifetimeMs / 1000))), 'cat'];
}

/**
 * The container's Env: the spec's entries, plus every variable the image itself sets (its ENV) and HOSTNAME named
 * without a value, which makes the engine unset them, in the container and in every exec. So a program sees only
 * what the pool and its caller pass, never the image's ENV (e.g. GPG_KEY, PYTHON_VERSION) nor the engine's HOSTNAME.
 */
export function sandboxEnv(env: string[], imageEnv: string[] = []): string[] {
  const keyOf = (entry: string) =>
    entry.includes('=') ? entry.slice(0, entry.indexOf('=')) : entry;
  const given = new Set(env.map(keyOf));
  const unset = [...imageEnv.map(keyOf), 'HOSTNAME'].filter((k) => k && !given.has(k));
  return [...env, ...new Set(unset)];
}

/** Builds the engine's createContainer body: the hardening table of docs/ in one place. */
export function toCreateOptions(
  spec: ContainerSpec,
  imageEnv: string[] = [],
): Dockerode.ContainerCreateOptions {
  const securityOpt = ['no-new-privileges:true'];
  if (spec.seccompProfile) securityOpt.push(`seccomp=${spec.seccompProfile}`);
  const tmpfs: Record<string, string> = {};
  for (const t of spec.tmpfs) {
    const opts = ['rw', 'nosuid', 'nodev', t.exec ? 'exec' : 'noexec', `size=${t.sizeBytes}`];
    opts.push(`mode=${t.mode}`);
    if (t.owner) {
      const [uid, gid] = t.owner.split(':');
      opts.push(`uid=${uid}`, `gid=${gid ?? uid}`);
    }
    tmpfs[t.path] = opts.join(',');
  }
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: lifelineCommand(spec.lifetimeMs),
    Entrypoint: [],
    // Not the sandbox user: see LIFELINE_USER. No WorkingDir either: runc would copy the mode of the directory
    // dockerd makes for it onto the work dir's tmpfs (0755); each exec sets its own cwd, so the tmpfs stays 0700.
    User: LIFELINE_USER,
    Env: sandboxEnv(spec.env, imageEnv),
    Labels: spec.labels,
    Hostname: 'sandbox',
    Tty: false,
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: 'none',
      AutoRemove: true,
      Init: true,
      Privileged: false,
      ReadonlyRootfs: true,
      Tmpfs: tmpfs,
      ShmSize: spec.shmSizeBytes,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      NanoCpus: spec.nanoCpus,
      PidsLimit: spec.pidsLimit,
      CapDrop: ['ALL'],
      CapAdd: [],
      SecurityOpt: securityOpt,
      Ulimits: [
        { Name: 'nofile', Soft: spec.nofileLimit, Hard: spec.nofileLimit },
        { Name: 'core', Soft: 0, Hard: 0 },
        { Name: 'fsize', Soft: spec.fileSizeLimitBytes, Hard: spec.fileSizeLimitBytes },
      ],
      LogConfig: { Type: 'none', Config: {} },
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      PidMode: '',
      IpcMode: 'private',
      UTSMode: '',
      Binds: [],
      Mounts: [],
      Devices: [],
      ...(spec.runtime ? { Runtime: spec.runtime } : {}),
    },
  };
}

/**
 * The typed error of an exec the engine could not start, from runc's message (e.g. `exec: "nosuch": executable
 * file not found in $PATH`, `chdir to cwd ("/x") set in config.json failed: no such file or directory`).
 */
export function notStarted(output: { stdout: Buffer; stderr: Buffer }): InvalidRequestError {
  const text = Buffer.concat([output.stdout, output.stderr]).toString('utf8').slice(0, 2000);
  const reason =
    /unable to start container process: (.*?)(?:: unknown)?\s*$/m.exec(text)?.[1] ??
    (text.trim() || 'the engine did not start it');
  if (/chdir to cwd/.test(reason)) {
    return new InvalidRequestError(
      'workdir',
      `the engine could not enter it (${reason.replace(/ set in config\.json failed/, '')}); it must be an ` +
        'existing directory of the container',
    );
  }
  return new InvalidRequestError(
    'cmd[0]',
    `the engine could not start the program (${reason}); name an executable of the image, by path or on PATH`,
  );
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

/** ContainerDriver over the Docker Engine API, with dockerode. */
export class DockerDriver implements ContainerDriver {
  readonly docker: Dockerode;
  private readonly imageEnv = new Map<string, string[]>();

  constructor(options?: Dockerode.DockerOptions | Dockerode) {
    this.docker = options instanceof Dockerode ? options : new Dockerode(options);
  }

  /** ping / version / info with a deadline: dockerode accepts `{ abortSignal }` there, its typings omit it. */
  private quickCall<T>(method: 'ping' | 'version' | 'info'): Promise<T> {
    const fn = this.docker[method] as unknown as (opts: object) => Promise<T>;
    return fn.call(this.docker, deadline());
  }

  async info(): Promise<EngineInfo> {
    try {
      await this.quickCall('ping');
      const [version, info] = await Promise.all([
        this.quickCall<Dockerode.DockerVersion>('version'),
        this.quickCall<any>('info'),
      ]);
      const securityOptions: string[] = info.SecurityOptions ?? [];
      return {
        name: `${(version as any).Platform?.Name || 'Docker Engine'} ${version.Version}`,
        endpoint: await this.endpoint(),
        version: version.Version,
        apiVersion: version.ApiVersion,
        os: `${info.OperatingSystem ?? version.Os}`,
        seccomp: securityOptions.some((o) => /(^|,)name=seccomp(,|$)/.test(o) || o === 'seccomp'),
        runtimes: Object.keys(info.Runtimes ?? {}),
        defaultRuntime: info.DefaultRuntime ?? 'runc',
      };
    } catch (err) {
      throw toEngineError(err, 'ping');
    }
  }

  /** The engine address, as the Docker CLI would print it. */
  async endpoint(): Promise<string> {
    const m = this.docker.modem as unknown as {
      socketPath?: string | (() => Promise<string>);
      protocol?: string;
      host?: string;
      port?: string | number;
    };
    // docker-modem keeps a function that finds the default socket when none was configured.
    const socket = typeof m.socketPath === 'function' ? await m.socketPath() : m.socketPath;
    if (socket) return `unix://${socket}`;
    return `${m.protocol ?? 'http'}://${m.host ?? 'localhost'}${m.port ? `:${m.port}` : ''}`;
  }

  async ensureImage(image: string, policy: PullPolicy, log: (message: string) => void) {
    this.imageEnv.delete(image);
    let present: boolean;
    try {
      const inspected = await this.docker
        .getImage(image)
        .inspect(deadline() as Dockerode.ImageInspectOptions);
      this.imageEnv.set(image, inspected.Config?.Env ?? []);
      present = true;
    } catch (err) {
      if (statusOf(err) !== 404) throw toEngineError(err, `inspecting image ${image}`);
      present = false;
    }
    if (present && policy !== 'always') return;
    if (!present && policy === 'never') {
      throw new ImageUnavailableError(image, 'it is not on the engine and pullPolicy is never');
    }
    log(`pulling ${image} (pullPolicy ${policy})`);
    await this.pull(image, log);
    this.imageEnv.delete(image);
  }

  /**
   * The image's own ENV entries (cached per image name until the next ensureImage). Without them the image's
   * variables could not be unset, so a failure fails the create.
   */
  private async imageEnvOf(image: string, signal?: AbortSignal): Promise<string[]> {
    const known = this.imageEnv.get(image);
    if (known) return known;
    try {
      const inspected = await this.docker
        .getImage(image)
        .inspect(deadline(signal) as Dockerode.ImageInspectOptions);
      const env = inspected.Config?.Env ?? [];
      this.imageEnv.set(image, env);
      return env;
    } catch (err) {
      if (statusOf(err) === 404)
        throw new ImageUnavailableError(image, 'the engine does not have it');
      throw toCreateError(err, image);
    }
  }

  private async pull(image: string, log: (message: string) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(image);
    } catch (err) {
      if (isConnectionError(err) && statusOf(err) === undefined) throw toEngineError(err, 'pull');
      throw new ImageUnavailableError(image, `the pull failed: ${describe(err)}`, { cause: err });
    }
    const started = Date.now();
    let lastLog = 0;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: unknown, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          const failed = events?.find((e) => e.error || e.errorDetail);
          if (err || failed) {
            const detail = failed?.errorDetail?.message ?? failed?.error ?? describe(err);
            reject(new ImageUnavailableError(image, `the pull failed: ${detail}`, { cause: err }));
          } else {
            log(`pulled ${image} in ${Date.now() - started} ms`);
            resolve();
          }
        },
        (event: { status?: string; id?: string; progress?: string }) => {
          const now = Date.now();
          if (now - lastLog >= 2000) {
            lastLog = now;
            log(
              `pull ${image}: ${[event.id, event.status, event.progress].filter(Boolean).join(' ')}`,
            );
          }
        },
      );
    });
  }

  async createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<DriverContainer> {
    const abortCheck = () => {
      if (!signal?.aborted) return;
      const why = signal.reason instanceof Error ? signal.reason.message : 'aborted';
      throw new ContainerCreateError(`the create was given up: ${why}`, { cause: signal.reason });
    };
    let container: Dockerode.Container | undefined;
    let lifeline: Duplex | undefined;
    try {
      container = await this.docker.createContainer({
        ...toCreateOptions(spec, await this.imageEnvOf(spec.image, signal)),
        abortSignal: signal,
      });
      abortCheck();
      lifeline = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
        // Bounds the call only: the signal never fires once the create has succeeded.
        abortSignal: signal,
      })) as unknown as Duplex;
      abortCheck();
      await container.start({ abortSignal: signal });
      abortCheck();
    } catch (err) {
      lifeline?.destroy();
      // Whatever got created must not stay behind: remove by name (the id may never have arrived).
      this.removeContainer(container?.id ?? spec.name).catch(() => undefined);
      if (signal?.aborted && !(err instanceof ContainerPoolError)) abortCheck();
      throw toCreateError(err, spec.image);
    }
    const line = lifeline;
    // Output of the lifeline is none; keep the stream flowing so it can end.
    line.on('data', () => undefined);
    const exited = new Promise<string>((resolve) => {
      line.once('end', () => resolve('the container stopped'));
      line.once('close', () => resolve('the container stopped'));
      line.once('error', (err: Error) => resolve(`its lifeline broke: ${err.message}`));
    });
    return {
      id: container.id,
      name: spec.name,
      handle: container,
      exited,
      execUser: spec.user,
      // Closing the attached stdin makes PID 1's `cat` see EOF: the container exits and the engine removes it.
      detach: () => line.destroy(),
    };
  }

  async exec(target: DriverContainer, request: DriverExecRequest): Promise<DriverExecResult> {
    const container = target.handle as Dockerode.Container;
    const { signal } = request;
    let exec: Dockerode.Exec;
    let stream: Duplex;
    try {
      // The signal also bounds these calls: an engine that does not answer cannot hold the execution past its
      // timeout (or the caller's abort).
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
      if (signal.aborted) {
        return {
          stdout: Buffer.alloc(0),
          stderr: Buffer.alloc(0),
          truncated: false,
          exitCode: null,
          aborted: true,
        };
      }
      throw toContainerError(err, target.name, 'starting the execution');
    }

    const stdout = new CappedSink(request.maxOutputBytes);
    const stderr = new CappedSink(request.maxOutputBytes);
    const outcome = await new Promise<'ended' | 'aborted' | Error>((resolve) => {
      const done = (how: 'ended' | 'aborted' | Error) => {
        signal.removeEventListener('abort', onAbort);
        stream.removeListener('end', onEnd);
        stream.removeListener('close', onEnd);
        stream.removeListener('error', onError);
        resolve(how);
      };
      const onEnd = () => done('ended');
      const onError = (err: Error) => done(err);
      const onAbort = () => {
        stream.destroy();
        done('aborted');
      };
      stream.on('end', onEnd);
      stream.on('close', onEnd);
      stream.on('error', onError);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.docker.modem.demuxStream(stream as Readable, stdout, stderr);
      // The program's stdin: what the caller gave, then EOF.
      stream.on('error', () => undefined);
      if (request.stdin?.length) stream.write(request.stdin);
      stream.end();
    });
    stream.destroy();
    const base = {
      stdout: stdout.bytes,
      stderr: stderr.bytes,
      truncated: stdout.truncated || stderr.truncated,
    };
    if (outcome === 'aborted') return { ...base, exitCode: null, aborted: true };
    // The connection broke before the output ended: what was read may be incomplete, never a success.
    if (outcome instanceof Error)
      throw toContainerError(outcome, target.name, 'reading the output');

    const exitCode = await this.waitForExitCode(exec, target, signal, base);
    if (exitCode === 'aborted') return { ...base, exitCode: null, aborted: true };
    return { ...base, exitCode, aborted: false };
  }

  /**
   * The exit code, read after the stream ended. A program that closed its output but still runs keeps
   * `Running` true: poll (cheaply, backing off) until it exits or the caller aborts.
   */
  private async waitForExitCode(
    exec: Dockerode.Exec,
    target: DriverContainer,
    signal: AbortSignal,
    output: { stdout: Buffer; stderr: Buffer },
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
      if (!info.Running && (info as { Pid?: number }).Pid === 0) throw notStarted(output);
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

  async oomKillCount(target: DriverContainer): Promise<number | null> {
    // The container sees its own memory cgroup: cgroup v1 memory.oom_control, v2 memory.events.
    const r = await this.exec(target, {
      cmd: ['cat', '/sys/fs/cgroup/memory/memory.oom_control', '/sys/fs/cgroup/memory.events'],
      user: target.execUser,
      env: [],
      workdir: '/',
      stdin: null,
      maxOutputBytes: 4096,
      signal: AbortSignal.timeout(5_000),
    });
    const m = /^oom_kill (\d+)$/m.exec(r.stdout.toString('utf8'));
    return m ? Number(m[1]) : null;
  }

  async removeContainer(idOrName: string): Promise<void> {
    try {
      await this.docker
        .getContainer(idOrName)
        .remove({ force: true, v: true, abortSignal: AbortSignal.timeout(REMOVE_TIMEOUT_MS) });
    } catch (err) {
      const status = statusOf(err);
      // 404: already gone; 409: a removal is already in progress (AutoRemove). Both mean done.
      if (status === 404 || status === 409) return;
      if (status === undefined && isConnectionError(err)) {
        throw toEngineError(err, `removing container ${idOrName}`);
      }
      throw new ContainerRemoveError(idOrName, describe(err), { cause: err });
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ListedContainer[]> {
    try {
      const rows = await this.docker.listContainers({
        all: true,
        filters: { label: labelFilters(labels) },
        ...deadline(),
      });
      return rows.map((r) => ({
        id: r.Id,
        name: (r.Names?.[0] ?? r.Id).replace(/^\//, ''),
        state: r.State,
        labels: r.Labels ?? {},
        createdAt: new Date(r.Created * 1000),
      }));
    } catch (err) {
      throw toEngineError(err, 'listing containers');
    }
  }

  watchEvents(labels: Record<string, string>, handlers: EngineEventHandlers): EventSubscription {
    let closed = false;
    let stream: Readable | undefined;
    let timer: NodeJS.Timeout | undefined;
    let sinceSec: number | undefined;
    const seen = new Set<string>();
    let delayMs = BACKOFF_INITIAL_MS;
    let connected = false;

    const setStatus = (next: boolean, error?: Error) => {
      if (next !== connected || error) handlers.onStatus(next, error);
      connected = next;
    };
    const reconnect = (error?: Error) => {
      stream = undefined;
      if (closed) return;
      setStatus(false, error);
      timer = setTimeout(connect, delayMs);
      delayMs = Math.min(delayMs * 2, EVENT_RECONNECT_MAX_MS);
    };
    const connect = () => {
      timer = undefined;
      if (closed) return;
      const opts: Record<string, unknown> = {
        filters: { type: ['container'], event: WATCHED_EVENTS, label: labelFilters(labels) },
      };
      if (sinceSec !== undefined) opts.since = String(sinceSec);
      this.docker.getEvents(opts, (err, s) => {
        if (closed) {
          (s as Readable | undefined)?.destroy();
          return;
        }
        if (err || !s) return reconnect(err ?? new Error('no event stream'));
        const current = s as Readable;
        stream = current;
        delayMs = BACKOFF_INITIAL_MS;
        // Events while disconnected are replayed from here on the next reconnect.
        sinceSec ??= Math.floor(Date.now() / 1000) - 1;
        setStatus(true);
        let pending = '';
        current.on('data', (chunk: Buffer) => {
          pending += chunk.toString('utf8');
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (!line) continue;
            try {
              const ev = JSON.parse(line) as {
                Action?: string;
                status?: string;
                id?: string;
                Actor?: { ID?: string };
                time?: number;
                timeNano?: number;
              };
              const type = (ev.Action ?? ev.status) as EngineEventType;
              const id = ev.Actor?.ID ?? ev.id;
              const timeMs = ev.timeNano ? Math.floor(ev.timeNano / 1e6) : (ev.time ?? 0) * 1000;
              if (ev.time) sinceSec = ev.time;
              // A reconnect replays from the last second seen: report each event once.
              const key = `${id}:${type}:${ev.timeNano ?? ev.time}`;
              if (seen.has(key)) continue;
              seen.add(key);
              if (seen.size > 1000) seen.delete(seen.values().next().value as string);
              if (id && WATCHED_EVENTS.includes(type))
                handlers.onEvent({ type, containerId: id, timeMs });
            } catch {
              // A malformed line is skipped; the next one is independent.
            }
          }
        });
        let ended = false;
        const onGone = (e?: Error) => {
          if (ended) return;
          ended = true;
          current.removeAllListeners('data');
          reconnect(e ?? new Error('the engine closed the event stream'));
        };
        current.once('end', () => onGone());
        current.once('close', () => onGone());
        current.once('error', (e: Error) => onGone(e));
      });
    };
    connect();
    return {
      close: () => {
        closed = true;
        if (timer) clearTimeout(timer);
        stream?.destroy();
        stream = undefined;
      },
    };
  }

  async close(): Promise<void> {
    // dockerode keeps no pool of its own beyond Node's agent; hijacked streams are closed by their owners.
  }
}
