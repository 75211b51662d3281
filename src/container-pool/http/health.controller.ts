import { BadRequestException, Get, Query, ServiceUnavailableException } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorResult,
} from '@nestjs/terminus';
import { ApiOperation, ApiQuery, ApiTags } from './openapi/swagger';
import { ContainerPoolHealthIndicator } from '../health/container-pool.health';

const KEY = 'containerPool';

/** Adds profiles that do not decide the status to a terminus result: in `details`, and `info` or `error`. */
function withInformational(result: HealthCheckResult, extra: HealthIndicatorResult): void {
  for (const [key, value] of Object.entries(extra)) {
    result.details[key] = value;
    const section = value.status === 'up' ? 'info' : 'error';
    (result[section] ??= {})[key] = value;
  }
}

/**
 * GET <healthPath>/live and <healthPath>/ready (default /health/...), without auth.
 * Routed by the module under the path of its options (see ContainerPoolModuleExtras.healthPath).
 */
@ApiTags('health')
export class ContainerPoolHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly pool: ContainerPoolHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: 200 while the process serves HTTP' })
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary:
      'Readiness: 200 when the engine answers and the default profile (or the one asked for) can serve, ' +
      'else 503 with the reason; every other profile is reported in the details without deciding',
  })
  @ApiQuery({
    name: 'profile',
    required: false,
    description: 'Only this profile decides (404 for an unknown one).',
  })
  async ready(@Query('profile') profile?: unknown): Promise<HealthCheckResult> {
    if (profile !== undefined) {
      if (typeof profile !== 'string') {
        throw new BadRequestException({
          statusCode: 400,
          code: 'INVALID_REQUEST',
          message: 'profile must be given once, as a profile name',
          field: 'profile',
        });
      }
      return this.health.check([() => this.pool.forRoute(`${KEY}:${profile}`, profile)]);
    }
    const others = (): HealthIndicatorResult => {
      const all = this.pool.everyProfile(KEY);
      delete all[KEY];
      return all;
    };
    try {
      const result = await this.health.check([() => this.pool.isReady(KEY)]);
      withInformational(result, others());
      return result;
    } catch (err) {
      if (err instanceof ServiceUnavailableException) {
        withInformational(err.getResponse() as HealthCheckResult, others());
      }
      throw err;
    }
  }
}
