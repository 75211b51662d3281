import type { ContainerState } from '../interfaces/container.interface';
import type { SourcedContainer } from './container-source';

/** An execution in flight, as the pool sees it: it can be killed with an error. */
export interface ActiveExecution {
  kill(error: Error): void;
  readonly done: Promise<unknown>;
}

/** The pool's record of one container. */
export class PooledContainer {
  state: ContainerState = 'idle';
  /** Why the container died outside the pool's control, or null. */
  lostReason: string | null = null;
  /** An execution timed out or was aborted in it: never reuse it. */
  tainted = false;
  /** OOM kills the engine reported for it. */
  oomEvents = 0;
  /** The cgroup's OOM kill counter when last read, so a reused container reports each kill once. */
  oomKillsReported = 0;
  removal?: Promise<void>;
  /** Stops following the container's fate (set once the pool watches it). */
  unwatch?: () => void;
  readonly executions = new Set<ActiveExecution>();
  private readonly watchers = new Set<() => void>();

  constructor(readonly source: SourcedContainer) {}

  get id(): string {
    return this.source.id;
  }

  get name(): string {
    return this.source.name;
  }

  /** Its generation (see SourcedContainer.generation). */
  get generation(): string | undefined {
    return this.source.generation;
  }

  get createdAt(): Date {
    return this.source.createdAt;
  }

  get expiry(): Date {
    return this.source.expiry;
  }

  get hardDeadline(): Date {
    return this.source.hardDeadline;
  }

  /** Wakes whoever waits for news about this container (an OOM event, its death). */
  notify(): void {
    for (const w of [...this.watchers]) w();
  }

  /** Resolves on the next notify() or after `ms`. */
  waitForNews(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.watchers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.watchers.add(done);
    });
  }
}
