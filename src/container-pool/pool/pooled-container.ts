import type Dockerode from 'dockerode';
import type { DriverContainer } from '../engine/container-driver.interface';
import type { Container, ContainerState } from '../interfaces/container.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { ExecOptions } from '../interfaces/run-request.interface';

/** What a PooledContainer needs from its pool. */
export interface ContainerOwner {
  executeIn(container: PooledContainer, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  destroyContainer(container: PooledContainer): Promise<void>;
}

/** An execution in flight, as the pool sees it: it can be killed with an error. */
export interface ActiveExecution {
  kill(error: Error): void;
  readonly done: Promise<unknown>;
}

/** The pool's record of one container; also what acquire() hands out (as `Container`). */
export class PooledContainer implements Container {
  state: ContainerState = 'idle';
  /** Why the container died outside the pool's control, or null. */
  lostReason: string | null = null;
  /** An execution timed out or was aborted in it: never reuse it. */
  tainted = false;
  oomEvents = 0;
  /** The cgroup's OOM kill counter when last read, so a reused container reports each kill once. */
  oomKillsReported = 0;
  removal?: Promise<void>;
  readonly executions = new Set<ActiveExecution>();
  private readonly watchers = new Set<() => void>();

  constructor(
    private readonly owner: ContainerOwner,
    readonly driverContainer: DriverContainer,
    readonly image: string,
    readonly createdAt: Date,
    /** When the pool recycles it: no hand-out after this. */
    readonly expiry: Date,
    /** When the container kills itself (its lifetime). */
    readonly hardDeadline: Date,
  ) {}

  get id(): string {
    return this.driverContainer.id;
  }

  get name(): string {
    return this.driverContainer.name;
  }

  get dockerContainer(): Dockerode.Container {
    return this.driverContainer.handle as Dockerode.Container;
  }

  execute(cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.owner.executeIn(this, cmd, opts);
  }

  destroy(): Promise<void> {
    return this.owner.destroyContainer(this);
  }

  belongsTo(owner: ContainerOwner): boolean {
    return this.owner === owner;
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

  toJSON() {
    return { id: this.id, name: this.name, state: this.state };
  }
}
