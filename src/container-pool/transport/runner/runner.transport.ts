import { OOM_EVENT_GRACE_MS } from '../../container-pool.constants';
import type { ContainerDriver, DriverContainer } from '../../engine/container-driver.interface';
import { ContainerLostError } from '../../errors/container-pool.errors';
import type {
  MainProcess,
  OomEvidence,
  OutputSinks,
  Transport,
  TransportJob,
  TransportOutcome,
} from '../transport.interface';
import { RunnerConnection, RunnerStartError } from './runner-connection';
import { countedOomKill } from '../oom-verdict';
import { RUNNER_PROTOCOL_VERSION } from './runner-protocol';
import { runnerSource } from './runner-source';

export interface RunnerTransportOptions {
  /**
   * The interpreter (`pythonCommand`): the runner is `<python> -I -c <runner.py> <deadline> <protocol>
   * [<options-json>]`.
   */
  pythonCommand: string[];
  /** Modules the runner imports before its HELLO (`preloadModules`; protocol 3 start options). Default none. */
  preloadModules?: readonly string[];
  /** `uid:gid` of the sandbox user: the runner and every job run as it. */
  user: string;
  /** The container's environment (PATH, HOME): each job's starts from it. */
  baseEnv: string[];
  log: { warn(message: string): void; debug(message: string): void };
}

/**
 * The runner's command line for a container that must be gone by `deadline`; the fourth argument, the start
 * options `{"preload": [...]}`, only when there are modules to pre-import (docs/runner-protocol.md, protocol 3).
 */
export function runnerCommand(
  pythonCommand: string[],
  deadline: Date,
  preloadModules: readonly string[] = [],
): string[] {
  return [
    ...pythonCommand,
    '-I',
    '-c',
    runnerSource().source,
    String(Math.floor(deadline.getTime() / 1000)),
    String(RUNNER_PROTOCOL_VERSION),
    ...(preloadModules.length ? [JSON.stringify({ preload: preloadModules })] : []),
  ];
}

/** `KEY=value` entries, later ones replacing earlier ones of the same key (as the engine merges an exec's env). */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const byKey = new Map<string, string>();
  for (const entry of [...base, ...extra]) {
    const at = entry.indexOf('=');
    byKey.set(at < 0 ? entry : entry.slice(0, at), entry);
  }
  return [...byKey.values()];
}

/**
 * Every execution is a job of the runner, the container's PID 1 (docs/runner-protocol.md): no engine call per
 * execution, only frames on the attached stdio. The container is idle only after the runner's HELLO.
 */
export class RunnerTransport implements Transport {
  readonly name = 'runner' as const;
  private readonly connections = new WeakMap<DriverContainer, RunnerConnection>();

  constructor(
    private readonly driver: ContainerDriver,
    private readonly options: RunnerTransportOptions,
  ) {}

  /**
   * What identifies this transport's containers: part of their generation. The pre-imported modules are part of
   * the runner's command line, so another list makes another generation (the containers roll).
   */
  get identity(): string {
    const r = runnerSource();
    const preload = this.options.preloadModules ?? [];
    return (
      `runner:${r.version}:${r.hash}` + (preload.length ? `:preload=${preload.join(',')}` : '')
    );
  }

  /** The container's runner connection (once it was created by this transport). */
  connectionOf(container: DriverContainer): RunnerConnection | undefined {
    return this.connections.get(container);
  }

  mainProcess(deadline: Date): MainProcess {
    return {
      command: runnerCommand(this.options.pythonCommand, deadline, this.options.preloadModules),
      // The runner is PID 1: it reaps orphans itself, and the kernel spares it SIGKILL/SIGSTOP from inside.
      init: false,
      // The sandbox user: a job is its forked child. Non-dumpable, so a job of the same uid can neither ptrace
      // it nor open its /proc/1/fd (docs/security.md).
      mainUser: this.options.user,
      capAdd: [],
      channel: true,
      ready: (container, signal) => this.connect(container, signal),
      slowReady: true,
    };
  }

  private async connect(container: DriverContainer, signal?: AbortSignal): Promise<void> {
    const connection = new RunnerConnection(container, {
      runnerVersion: runnerSource().version,
      kill: () => {
        this.driver.removeContainer(container.id).catch(() => container.detach?.());
      },
      log: this.options.log,
    });
    this.connections.set(container, connection);
    // Bounded by the create's signal: the driver gives up (and removes the container) at createTimeoutMs. A
    // give-up is not the image's verdict (exitedBeforeHello false): a slow start is no "the runner cannot run".
    if (!signal) {
      await connection.hello;
      return;
    }
    let onAbort!: () => void;
    const givenUp = new Promise<never>((_, reject) => {
      onAbort = () => {
        const why = signal.reason instanceof Error ? signal.reason.message : 'aborted';
        reject(
          new RunnerStartError(
            `no hello from the runner before the create was given up: ${why}`,
            false,
          ),
        );
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    givenUp.catch(() => undefined);
    try {
      await Promise.race([connection.hello, givenUp]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async run(
    container: DriverContainer,
    job: TransportJob,
    sinks: OutputSinks,
    signal: AbortSignal,
  ): Promise<TransportOutcome> {
    const connection = this.connections.get(container);
    if (!connection) throw new ContainerLostError(container.name, 'it has no runner connection');
    if (job.user !== this.options.user) {
      throw new Error(`the runner runs jobs as ${this.options.user} only, not ${job.user}`);
    }
    const env = mergeEnv(this.options.baseEnv, job.env);
    const header =
      job.code !== undefined
        ? { kind: 'code' as const, env, workdir: job.workdir, lineBuffered: !!job.lineBuffered }
        : {
            kind: 'cmd' as const,
            argv: job.cmd,
            env,
            workdir: job.workdir,
            lineBuffered: false,
          };
    return connection.run(header, job.code, job.stdin, sinks, signal);
  }

  /**
   * The runner read the memory cgroup's OOM counter right after the reap (in EXIT): no engine call, and an
   * earlier job's late `oom` event does not count. Without it (no cgroup file), the engine's `oom` event decides,
   * within OOM_EVENT_GRACE_MS.
   */
  async wasOomKilled(
    _container: DriverContainer,
    c: OomEvidence,
    oomEventsBefore: number,
    outcome?: TransportOutcome,
  ): Promise<boolean> {
    const counted = countedOomKill(outcome);
    if (counted !== null) return counted;
    if (c.oomEvents > oomEventsBefore) return true;
    if (!c.lostReason) await c.waitForNews(OOM_EVENT_GRACE_MS);
    return c.oomEvents > oomEventsBefore;
  }
}
