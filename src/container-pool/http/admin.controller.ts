import {
  Body,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
  Optional,
  Param,
  Post,
  Put,
  Query,
  Res,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { HttpAdapterHost } from '@nestjs/core';
import { ContainerPoolService } from '../container-pool.service';
import type { PoolStats } from '../interfaces/container.interface';
import type { RolloutStatus } from '../interfaces/rollout.interface';
import { RolloutStatusDto, UpdateProfileDto } from './dto/update-profile.dto';
import { AdminRoutes, E400, E401, E403, E413, E415, E503 } from './admin-routes';
import { Audit, AuditedRequest } from './audit.interceptor';
import { ResizeDto } from './dto/resize.dto';
import {
  ContainerInfoDto,
  ErrorBodyDto,
  PoolStatsDto,
  RemovedContainerDto,
} from './dto/responses.dto';
import { RequireScope } from './guards/admin-token.guard';
import { httpError, invalidRequest } from './http-errors';
import { toContainerDto } from './mappers';
import { ApiBody, ApiOperation, ApiParam, ApiQuery, ApiResponse } from './openapi/swagger';
import { ContainerRefPipe } from './pipes/container-ref.pipe';
import { isProfileRoutes, poolOfRoute, ProfileName } from './profile-route';

const statsSummary = (s: PoolStats) =>
  ` idle=${s.idle} leased=${s.leased} size=${s.size} max=${s.maxContainers}`;

const resizeWhat = (req: AuditedRequest) =>
  Object.entries((req.body ?? {}) as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');

/**
 * The admin API of one pool, at `adminPrefix` (default /admin/pool): stats, containers, replenish, resize,
 * drain, resume, remove. Every route needs `Authorization: Bearer <adminToken>`. The module routes a subclass
 * of it per prefix (container-pool-http.ts), so this class carries no @Controller path of its own.
 */
@AdminRoutes('pool admin')
export class ContainerPoolController implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger: Logger;

  constructor(
    private readonly pool: ContainerPoolService,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.logger = new Logger(`ContainerPoolAdmin:${pool.options.name}`);
  }

  /** The profile a route serves (of its path, else the default one). */
  private target(profile: string | undefined) {
    return poolOfRoute(this.pool, profile);
  }

  /**
   * Nest's default JSON parser (100 kB) reads bodies before any module middleware, and Nest answers bodies over
   * its limit with a 500: say so once, since code and stdin of executions are often larger.
   */
  onApplicationBootstrap(): void {
    if (isProfileRoutes(this)) return;
    const adapter = this.adapterHost?.httpAdapter as
      { isMiddlewareApplied?: (name: string) => boolean } | undefined;
    if (adapter?.isMiddlewareApplied?.('jsonParser')) {
      this.logger.warn(
        "The host app's JSON body parser reads request bodies before the pool's routes, so its limit (100 kB " +
          'unless raised) applies to executions instead of maxBodyBytes (' +
          `${this.pool.options.maxBodyBytes} bytes). Create the app with { bodyParser: false } or raise it with ` +
          "app.useBodyParser('json', { limit }); ignore this if you already did the latter.",
      );
    }
  }

  onModuleInit(): void {
    if (isProfileRoutes(this)) return;
    const o = this.pool.options;
    if (!o.adminToken.length && !o.execToken.length && !o.readToken.length) {
      this.logger.warn(
        "The pool's HTTP API is disabled: every route of it answers 403 because no token is configured. Set " +
          'POOL_ADMIN_TOKEN (or the adminToken option; comma separated for rotation), or POOL_EXEC_TOKEN / ' +
          'POOL_READ_TOKEN for narrower scopes, to enable it.',
      );
    } else if (!o.adminToken.length) {
      this.logger.log(
        'No admin token is configured: the admin routes (replenish, size, drain, resume, remove) answer 403; ' +
          'the routes of the configured scopes serve.',
      );
    }
  }

  @Get()
  @RequireScope('read')
  @ApiOperation({ summary: 'Pool statistics' })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  stats(@ProfileName() profile?: string): PoolStats {
    return this.target(profile).stats();
  }

  @Get('containers')
  @RequireScope('read')
  @ApiOperation({ summary: "The pool's containers (idle, leased, creating, destroying)" })
  @ApiResponse({ status: 200, type: [ContainerInfoDto] })
  @ApiResponse(E401)
  @ApiResponse(E403)
  containers(@ProfileName() profile?: string): ContainerInfoDto[] {
    return this.target(profile).containers().map(toContainerDto);
  }

  @Post('replenish')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Top the pool up now; answers when the creates it started have finished',
  })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E503)
  @Audit({ action: 'replenish', summary: statsSummary })
  replenish(@ProfileName() profile?: string): Promise<PoolStats> {
    return this.target(profile).replenish();
  }

  @Put('size')
  @ApiOperation({
    summary: 'Resize at run time; shrinking removes idle surplus, never a leased container',
  })
  @ApiBody({ type: ResizeDto })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E413)
  @ApiResponse(E415)
  @Audit({ action: 'resize', what: resizeWhat, summary: statsSummary })
  resize(@Body() body: ResizeDto, @ProfileName() profile?: string): PoolStats {
    const pool = this.target(profile);
    if (body.size === undefined && body.maxContainers === undefined) {
      throw invalidRequest([{ field: 'size', message: 'size or maxContainers is required' }]);
    }
    const maxContainers = body.maxContainers ?? pool.stats().maxContainers;
    if (body.size !== undefined && body.size > maxContainers) {
      throw invalidRequest([
        {
          field: 'size',
          message: `size must not be greater than maxContainers (${maxContainers})`,
        },
      ]);
    }
    return pool.resize(body);
  }

  @Put()
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary:
      'Change the profile at run time (image, limits, size; not persisted: change the configuration too) and ' +
      'roll its new generation out by the strategy',
  })
  @ApiBody({ type: UpdateProfileDto })
  @ApiQuery({
    name: 'wait',
    required: false,
    description:
      'true: answer once the rollout is complete (at most progressDeadlineMs), with 200.',
  })
  @ApiResponse({ status: 202, type: RolloutStatusDto, description: 'Started: the rollout status.' })
  @ApiResponse({ status: 200, type: RolloutStatusDto, description: 'With ?wait=true: complete.' })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse({
    status: 409,
    description:
      'With ?wait=true: ROLLOUT_SUPERSEDED (a newer update came) or ROLLOUT_FAILED (the profile reverted).',
    type: ErrorBodyDto,
  })
  @ApiResponse(E413)
  @ApiResponse(E415)
  @ApiResponse(E503)
  @Audit({
    action: 'update',
    what: resizeWhat,
    summary: (s: RolloutStatus) => ` state=${s.state} target=${s.targetGeneration}`,
  })
  async update(
    @Body() body: UpdateProfileDto,
    @Res({ passthrough: true }) res: ServerResponse,
    @Query('wait') wait?: unknown,
    @ProfileName() profile?: string,
  ): Promise<RolloutStatus> {
    if (wait !== undefined && wait !== 'true' && wait !== 'false') {
      throw invalidRequest([{ field: 'wait', message: 'wait must be true or false' }]);
    }
    const pool = this.target(profile);
    const { strategy, maxSurge, ...patch } = body;
    const started = pool.startUpdate(patch, { strategy, maxSurge });
    if (wait !== 'true') {
      // Once the new image's id is known and new creates use it: an image the engine lacks fails here already.
      await started.applied;
      return pool.stats().rollout ?? started.status;
    }
    const status = await started.completed;
    res.statusCode = HttpStatus.OK;
    return status;
  }

  @Post('drain')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Remove idle containers and stop refilling (and handing out) until resume',
  })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @Audit({ action: 'drain', summary: statsSummary })
  drain(@ProfileName() profile?: string): Promise<PoolStats> {
    return this.target(profile).drain();
  }

  @Post('resume')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Serve and refill again after a drain' })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @Audit({ action: 'resume', summary: statsSummary })
  resume(@ProfileName() profile?: string): PoolStats {
    return this.target(profile).resume();
  }

  @Delete('containers/:id')
  @ApiOperation({
    summary: 'Remove one container of this pool (a leased one: its execution fails as lost)',
  })
  @ApiParam({
    name: 'id',
    description: 'Full 64-hex id, unique prefix of at least 12 hex digits, or container name.',
  })
  @ApiResponse({ status: 200, type: RemovedContainerDto })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse({
    status: 404,
    description: 'Not a container of this pool: nothing is touched.',
    type: ErrorBodyDto,
  })
  @Audit({
    action: 'remove-container',
    what: (req) => req.params?.id ?? '',
    summary: (r: RemovedContainerDto) => ` removed=${r.removed.name}`,
  })
  async removeContainer(
    @Param('id', ContainerRefPipe) id: string,
    @ProfileName() profile?: string,
  ): Promise<RemovedContainerDto> {
    const pool = this.target(profile);
    const container = pool.findContainer(id);
    if (!container) {
      throw httpError(
        404,
        'CONTAINER_NOT_FOUND',
        `No container "${id}" in ${profile === undefined ? 'pool' : 'profile'} "${pool.name}".`,
      );
    }
    const before = pool.containers().find((c) => c.id === container.id);
    await container.destroy();
    return {
      removed: toContainerDto(
        before ?? {
          id: container.id,
          name: container.name,
          state: 'destroying',
          createdAt: container.createdAt,
          expiry: container.expiry,
          image: pool.options.image,
        },
      ),
    };
  }
}
