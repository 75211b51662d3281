import { Get, Header, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ContainerPoolErrorFilter } from './filters/container-pool-error.filter';
import { MetricsAccessGuard } from './guards/admin-token.guard';
import {
  ADMIN_BEARER_SCHEME,
  ApiBearerAuth,
  ApiOperation,
  ApiProduces,
  ApiResponse,
  ApiTags,
} from './openapi/swagger';
import { ErrorBodyDto } from './dto/responses.dto';
import { ContainerPoolMetrics } from '../metrics/container-pool.metrics';

/**
 * GET <metricsPath> (default /metrics): Prometheus text. Bearer token required unless `metricsPublic`.
 * Routed by the module under the path of its options (see ContainerPoolModuleExtras.metricsPath).
 */
@ApiTags('metrics')
@ApiBearerAuth(ADMIN_BEARER_SCHEME)
@UseGuards(MetricsAccessGuard)
@UseFilters(ContainerPoolErrorFilter)
export class ContainerPoolMetricsController {
  constructor(private readonly metrics: ContainerPoolMetrics) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({ summary: 'Prometheus metrics of the pool (text exposition format)' })
  @ApiProduces('text/plain')
  @ApiResponse({
    status: 200,
    description: 'Prometheus text format 0.0.4.',
    schema: { type: 'string' },
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong bearer token.', type: ErrorBodyDto })
  @ApiResponse({
    status: 403,
    description: 'No token configured and metrics not public.',
    type: ErrorBodyDto,
  })
  async scrape(@Res({ passthrough: true }) res: { setHeader(name: string, value: string): void }) {
    res.setHeader('Content-Type', this.metrics.contentType);
    return this.metrics.metrics();
  }
}
