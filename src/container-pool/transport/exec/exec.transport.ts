import { OOM_EVENT_GRACE_MS } from '../../container-pool.constants';
import { EngineUnavailableError } from '../../errors/container-pool.errors';
import type { ContainerDriver, DriverContainer } from '../../engine/container-driver.interface';
import type {
  MainProcess,
  OomEvidence,
  OutputSinks,
  Transport,
  TransportJob,
  TransportOutcome,
} from '../transport.interface';
import { pythonCodeJob } from './python-bootstrap';

/**
 * The user of the container's main process (docker-init and the lifeline): root inside the container, with no
 * capability at all (CapDrop ALL, empty bounding set). Every execution runs as the sandbox user instead, so the
 * sandboxed code can neither signal, ptrace nor open /proc/<pid>/fd of its lifeline (different uid, no
 * CAP_KILL/CAP_SYS_PTRACE): see docs/security.md.
 */
export const LIFELINE_USER = '0:0';

/**
 * How PID 1's child waits on its lifeline: `cat` on the stdin held open by the owner (its EOF ends the
 * container), and a hard deadline. The deadline is absolute (the container's expires-at, rounded down to the
 * second), so a slow create or start never adds to the container's life, and it is waited for by one `sleep`
 * of what is left (then `kill -KILL` of `cat`): a single wake-up, so CPU starvation by the sandboxed code delays
 * it by one scheduling delay at most, never by the sum of many (busybox's `timeout` counts in one-second sleeps,
 * which drift by seconds under a CPU attack). A container started past its deadline exits at once.
 */
export function lifelineCommand(deadline: Date): string[] {
  const deadlineSec = Math.floor(deadline.getTime() / 1000);
  return [
    'sh',
    '-c',
    `left=$((${deadlineSec} - $(date +%s))); [ "$left" -gt 0 ] || exit 0; ` +
      '(sleep "$left"; kill -KILL $$) & exec cat',
  ];
}

/** The exec transport's main process: the engine's init running the lifeline, as root without capabilities. */
export function execMainProcess(deadline: Date): MainProcess {
  return {
    command: lifelineCommand(deadline),
    init: true,
    mainUser: LIFELINE_USER,
    capAdd: [],
    // Ready once started: nothing inside the container needs to answer.
    ready: () => Promise.resolve(),
  };
}

/** Every execution is one engine exec (`docker exec`) of its own. */
export class ExecTransport implements Transport {
  readonly name = 'exec' as const;
  readonly identity = 'exec';

  constructor(
    private readonly driver: ContainerDriver,
    /** The interpreter of `code` jobs (`pythonCommand`). */
    private readonly pythonCommand: string[] = ['python3'],
  ) {}

  mainProcess(deadline: Date): MainProcess {
    return execMainProcess(deadline);
  }

  run(
    container: DriverContainer,
    job: TransportJob,
    sinks: OutputSinks,
    signal: AbortSignal,
  ): Promise<TransportOutcome> {
    const { code, lineBuffered, ...rest } = job;
    let cmd = job.cmd ?? [];
    let stdin = job.stdin;
    if (code !== undefined) {
      // The code framed ahead of the caller's stdin (any size; argv is capped at 128 KiB by the kernel).
      const framed = pythonCodeJob(code, this.pythonCommand, { lineBuffered });
      cmd = framed.cmd;
      stdin = stdin ? Buffer.concat([framed.stdinPrefix, stdin]) : framed.stdinPrefix;
    }
    return this.driver.exec(container, { ...rest, cmd, stdin, ...sinks, signal });
  }

  /**
   * The engine's `oom` event usually arrives within milliseconds; when it has not (a loaded engine), the
   * container's own memory cgroup counter decides. The check also finds a dead container.
   */
  async wasOomKilled(
    container: DriverContainer,
    c: OomEvidence,
    oomEventsBefore: number,
  ): Promise<boolean> {
    if (c.oomEvents === oomEventsBefore && !c.lostReason) await c.waitForNews(OOM_EVENT_GRACE_MS);
    if (c.oomEvents > oomEventsBefore) return true;
    if (c.lostReason || !this.driver.oomKillCount) return false;
    try {
      const count = await this.driver.oomKillCount(container);
      if (count === null || count <= c.oomKillsReported) return false;
      c.oomKillsReported = count;
      return true;
    } catch (err) {
      // The container (or the engine) is gone: its lifeline will say so in a moment.
      if (!c.lostReason) await c.waitForNews(OOM_EVENT_GRACE_MS);
      // The engine is down: that is an infrastructure error. Anything else (the program left no pid for the
      // counter's read, say) leaves the verdict at what the event stream said: not OOM-killed.
      if (!c.lostReason && err instanceof EngineUnavailableError) throw err;
      return false;
    }
  }
}
