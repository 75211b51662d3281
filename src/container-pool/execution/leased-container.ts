import type { DriverContainer } from '../engine/container-driver.interface';
import type { DockerContainerHandle } from '../engine/docker/docker.types';
import type { Container } from '../interfaces/container.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { ContainerFiles } from '../interfaces/files.interface';
import type { ExecOptions } from '../interfaces/run-request.interface';
import type { PooledContainer } from '../pool/pooled-container';

/** What a handed-out container needs from its pool. */
export interface LeaseOwner {
  execute(entry: PooledContainer, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  destroy(entry: PooledContainer): Promise<void>;
  /** The files API of a leased container. */
  files(entry: PooledContainer): ContainerFiles;
}

/** A container as acquire() hands it out: the pool's record behind the public Container API. */
export class LeasedContainer implements Container {
  constructor(
    readonly entry: PooledContainer,
    private readonly owner: LeaseOwner,
  ) {}

  get id(): string {
    return this.entry.id;
  }

  get name(): string {
    return this.entry.name;
  }

  get createdAt(): Date {
    return this.entry.createdAt;
  }

  get expiry(): Date {
    return this.entry.expiry;
  }

  get dockerContainer(): DockerContainerHandle {
    return (this.entry.source.handle as DriverContainer).handle as DockerContainerHandle;
  }

  execute(cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.owner.execute(this.entry, cmd, opts);
  }

  destroy(): Promise<void> {
    return this.owner.destroy(this.entry);
  }

  get files(): ContainerFiles {
    return this.owner.files(this.entry);
  }

  belongsTo(owner: LeaseOwner): boolean {
    return this.owner === owner;
  }

  toJSON() {
    return { id: this.id, name: this.name, state: this.entry.state };
  }
}
