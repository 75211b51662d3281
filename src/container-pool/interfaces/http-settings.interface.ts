import type { Type } from '@nestjs/common';

/** What the module routes, after defaults; the controllers are the per-path subclasses it registered. */
export interface ContainerPoolHttpSettings {
  adminPrefix: string | null;
  healthPath: string | null;
  metricsPath: string | null;
  /** The controllers routed under `adminPrefix` (admin, executions); empty when the admin API is off. */
  adminControllers: Type[];
  /** Every controller the module routes (admin, executions, health, metrics). */
  controllers: Type[];
}
