import type { ContainerPoolError } from '../errors/container-pool.errors';
import type { ExecResult } from './exec-result.interface';

/** Events a pool emits for observers (metrics): see ContainerPoolService.events. */
export interface ContainerPoolEventMap {
  acquired: [{ waitMs: number }];
  created: [{ durationMs: number }];
  createFailed: [{ error: ContainerPoolError }];
  executed: [{ result: ExecResult }];
  destroyed: [{ reason: string }];
}
