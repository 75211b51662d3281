import type { DockerContainerHandle } from '../engine/docker/docker.types';
import type { ExecResult } from './exec-result.interface';
import type { ContainerFiles } from './files.interface';
import type { ExecOptions } from './run-request.interface';
import type { RolloutStatus } from './rollout.interface';

export type ContainerState = 'creating' | 'idle' | 'leased' | 'destroying';

/** A pooled container, as acquire() hands it out. */
export interface Container {
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
  /** When the pool recycles it; it is never handed out after this. */
  readonly expiry: Date;
  /** The dockerode handle. */
  readonly dockerContainer: DockerContainerHandle;
  /** Runs argv in the container; resolves for every outcome of the program. */
  execute(cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Files in the container, handled inside it as the sandbox user. */
  readonly files: ContainerFiles;
  /** Removes the container now (it leaves the pool); resolves when the engine has removed it. */
  destroy(): Promise<void>;
}

/** A row of ContainerPoolService.containers(). */
export interface ContainerInfo {
  id: string;
  name: string;
  state: ContainerState;
  createdAt: Date;
  expiry: Date;
  image: string;
  /** Its generation label (see stats().rollout); null while creating or when unknown. */
  generation?: string | null;
}

export interface PoolStats {
  /** The module's pool name (its containers' pool label). */
  name: string;
  /** The profile these stats are of (the pool name without profiles). */
  profile: string;
  image: string;
  /** How its programs reach their containers (`auto` decided: see the `transport` setting). */
  transport: 'exec' | 'runner';
  idle: number;
  leased: number;
  creating: number;
  destroying: number;
  waiting: number;
  size: number;
  maxContainers: number;
  draining: boolean;
  shuttingDown: boolean;
  engineAvailable: boolean;
  /** Why the pool cannot serve right now, or null. */
  lastError: string | null;
  totals: PoolTotals;
  /** Where the profile's last update stands (set by every profile's stats()). */
  rollout?: RolloutStatus;
  /** The profile's sessions: open now, and counts since start (set by every profile's stats()). */
  sessions?: SessionStats;
}

export interface SessionStats {
  open: number;
  opened: number;
  closed: number;
  calls: number;
  /** Timeout ladder steps taken: 1 KeyboardInterrupt, 2 kill and restart, 3 recycle. */
  interrupts: number;
  kills: number;
  recycles: number;
}

export interface PoolTotals {
  created: number;
  destroyed: number;
  failedCreates: number;
  acquired: number;
  acquireTimeouts: number;
  executions: number;
  timeouts: number;
  ooms: number;
  truncated: number;
  containersLost: number;
  orphansRemoved: number;
}
