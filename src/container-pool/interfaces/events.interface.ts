import type { ContainerPoolError } from '../errors/container-pool.errors';
import type { ExecResult } from './exec-result.interface';

/** Events a pool emits for observers (metrics): see ContainerPoolService.events. */
export interface ContainerPoolEventMap {
  acquired: [{ waitMs: number; profile?: string }];
  created: [{ durationMs: number; profile?: string }];
  createFailed: [{ error: ContainerPoolError; profile?: string }];
  executed: [{ result: ExecResult; profile?: string }];
  destroyed: [{ reason: string; profile?: string }];
}

/** The names of the pool's events. */
export const CONTAINER_POOL_EVENTS = [
  'acquired',
  'created',
  'createFailed',
  'executed',
  'destroyed',
] as const;
