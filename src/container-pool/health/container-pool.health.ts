import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../container-pool.constants';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { ContainerPoolService } from '../container-pool.service';

/** Why the pool cannot serve now, or null when it can. */
export function notReadyReason(
  pool: ContainerPoolService,
  adminPrefix?: string | null,
): string | null {
  const s = pool.stats();
  if (s.shuttingDown) return 'the pool is shutting down';
  if (s.draining) {
    const how = adminPrefix ? `POST /${adminPrefix}/resume` : 'ContainerPoolService.resume()';
    return `the pool is drained by an operator (${how} to serve again)`;
  }
  const unavailable = pool.availabilityError();
  if (unavailable) return unavailable.message;
  if (!s.engineAvailable) return s.lastError ?? 'the Docker engine has not answered yet';
  if (s.idle > 0) return null;
  if (s.lastError) return s.lastError;
  const total = s.idle + s.leased + s.creating + s.destroying;
  if (total >= s.maxContainers) {
    return `saturated: all ${s.maxContainers} containers are in use (${s.leased} leased, ${s.waiting} waiting)`;
  }
  return null;
}

/**
 * Terminus indicator of one pool: up when the engine answers and the pool can serve (an idle container or
 * room to create one), down with the reason otherwise. Use it in a health controller of your own:
 * `health.check([() => poolHealth.isReady('containerPool')])`.
 */
@Injectable()
export class ContainerPoolHealthIndicator {
  constructor(
    private readonly pool: ContainerPoolService,
    private readonly indicators: HealthIndicatorService,
    @Optional()
    @Inject(CONTAINER_POOL_HTTP_SETTINGS)
    private readonly http?: ContainerPoolHttpSettings,
  ) {}

  isReady<const Key extends string>(key: Key): HealthIndicatorResult<Key> {
    const check = this.indicators.check(key);
    const s = this.pool.stats();
    const details = {
      pool: s.name,
      idle: s.idle,
      leased: s.leased,
      creating: s.creating,
      waiting: s.waiting,
      maxContainers: s.maxContainers,
      engineAvailable: s.engineAvailable,
    };
    const reason = notReadyReason(this.pool, this.http?.adminPrefix);
    return reason === null ? check.up(details) : check.down({ ...details, reason });
  }
}
