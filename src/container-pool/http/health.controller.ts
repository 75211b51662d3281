import { Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ApiOperation, ApiTags } from './openapi/swagger';
import { ContainerPoolHealthIndicator } from '../health/container-pool.health';

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
      'Readiness: 200 when the engine answers and the pool can serve, else 503 with the reason',
  })
  ready() {
    return this.health.check([() => this.pool.isReady('containerPool')]);
  }
}
