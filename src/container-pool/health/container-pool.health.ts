import { Inject, Injectable, NotFoundException, Optional } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { CONTAINER_POOL_HTTP_SETTINGS } from '../container-pool.constants';
import { ContainerPoolService } from '../container-pool.service';
import { UnknownProfileError } from '../errors/container-pool.errors';
import type { ContainerPoolHttpSettings } from '../interfaces/http-settings.interface';
import { notReadyReason } from '../profiles/readiness';

/**
 * Terminus indicator of the module's profiles: up when the engine answers and the profile can serve (an idle
 * container or room to create one), down with the reason otherwise. Use it in a health controller of your
 * own: `health.check([() => poolHealth.isReady('containerPool')])` (the default profile, which decides whether
 * the module is ready), `poolHealth.isReady('shell', 'shell')` for one profile.
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

  /** The profile's readiness under `key` (the default profile without one); unknown: UnknownProfileError. */
  isReady<const Key extends string>(key: Key, profile?: string): HealthIndicatorResult<Key> {
    const check = this.indicators.check(key);
    const pool = this.pool.pool(profile);
    const s = pool.stats();
    const details = {
      pool: this.pool.options.name,
      profile: pool.name,
      idle: s.idle,
      leased: s.leased,
      creating: s.creating,
      waiting: s.waiting,
      maxContainers: s.maxContainers,
      engineAvailable: s.engineAvailable,
    };
    const prefix = this.http?.adminPrefix;
    const hint = prefix
      ? `POST /${prefix}${profile === undefined ? '' : `/profiles/${pool.name}`}/resume`
      : undefined;
    const reason = notReadyReason(pool, hint);
    return reason === null ? check.up(details) : check.down({ ...details, reason });
  }

  /** Every profile's readiness, keyed `<key>` for the default profile and `<key>:<profile>` for the others. */
  everyProfile(key = 'containerPool'): HealthIndicatorResult {
    const defaultName = this.pool.pool().name;
    const result: HealthIndicatorResult = {};
    for (const name of this.pool.profileNames()) {
      const k = name === defaultName ? key : `${key}:${name}`;
      Object.assign(result, this.isReady(k, name === defaultName ? undefined : name));
    }
    return result;
  }

  /** isReady() for a route: an unknown profile is a 404 naming the known ones. */
  forRoute(key: string, profile: string): HealthIndicatorResult {
    try {
      return this.isReady(key, profile);
    } catch (err) {
      if (err instanceof UnknownProfileError) {
        throw new NotFoundException({ statusCode: 404, code: err.code, message: err.message });
      }
      throw err;
    }
  }
}
