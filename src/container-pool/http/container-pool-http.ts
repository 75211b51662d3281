import { Controller, DynamicModule, Type } from '@nestjs/common';
import { ContainerPoolController } from './admin.controller';
import { ContainerPoolExecutionsController } from './executions.controller';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { ContainerPoolHealthController } from './health.controller';
import { ContainerPoolMetricsController } from './metrics.controller';

/** The HTTP part of forRoot()/forRootAsync() extras. */
export interface ContainerPoolHttpExtras {
  /** Serve the admin API and POST /executions. Default true. */
  adminApi?: boolean;
  /** Path of the admin API. Default `admin/pool`. */
  adminPrefix?: string;
  /** Path of the liveness/readiness routes (`<path>/live`, `<path>/ready`), or false for none. Default `health`. */
  healthPath?: string | false;
  /** Path of the Prometheus route, or false for none. Default `metrics`. */
  metricsPath?: string | false;
}

export const DEFAULT_HTTP_EXTRAS: Required<ContainerPoolHttpExtras> = {
  adminApi: true,
  adminPrefix: 'admin/pool',
  healthPath: 'health',
  metricsPath: 'metrics',
};

function normalizePath(option: string, value: unknown): string {
  if (typeof value !== 'string' || !/^\/?[a-zA-Z0-9._~-]+(\/[a-zA-Z0-9._~-]+)*\/?$/.test(value)) {
    throw new Error(
      `ContainerPoolModule: ${option} must be a URL path such as "admin/pool", got ${JSON.stringify(value)}`,
    );
  }
  return value.replace(/^\/+|\/+$/g, '');
}

/**
 * A subclass of `base` routed at `path`. Each module instance gets its own, so two pools (or two apps) with
 * different paths never share or overwrite the decorator metadata of the base class.
 */
function routedAt<T extends Type>(base: T, path: string): T {
  const routed = { [base.name]: class extends base {} }[base.name];
  Controller(path)(routed);
  return routed;
}

/** Adds the pool's controllers and HTTP settings to the module definition, from the extras. */
export function withHttp(
  definition: DynamicModule,
  extras: ContainerPoolHttpExtras,
): DynamicModule {
  const adminPrefix =
    extras.adminApi === false
      ? null
      : normalizePath('adminPrefix', extras.adminPrefix ?? DEFAULT_HTTP_EXTRAS.adminPrefix);
  const path = (option: 'healthPath' | 'metricsPath') => {
    const value = extras[option];
    if (value === false) return null;
    return normalizePath(option, value ?? DEFAULT_HTTP_EXTRAS[option]);
  };
  const healthPath = path('healthPath');
  const metricsPath = path('metricsPath');
  const adminControllers =
    adminPrefix === null
      ? []
      : [ContainerPoolController, ContainerPoolExecutionsController].map((c) =>
          routedAt(c, adminPrefix),
        );
  const controllers: Type[] = [
    ...adminControllers,
    ...(healthPath === null ? [] : [routedAt(ContainerPoolHealthController, healthPath)]),
    ...(metricsPath === null ? [] : [routedAt(ContainerPoolMetricsController, metricsPath)]),
  ];
  const settings: ContainerPoolHttpSettings = {
    adminPrefix,
    healthPath,
    metricsPath,
    adminControllers,
  };
  return {
    ...definition,
    controllers: [...(definition.controllers ?? []), ...controllers],
    providers: [
      ...(definition.providers ?? []),
      { provide: CONTAINER_POOL_HTTP_SETTINGS, useValue: settings },
    ],
  };
}
