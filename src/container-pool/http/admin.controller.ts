import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BadRequestException,
  Body,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Logger,
  NotFoundException,
  OnApplicationBootstrap,
  OnModuleInit,
  Optional,
  Param,
  Post,
  Put,
  Req,
  Res,
  UseFilters,
  UseGuards,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ContainerPoolService } from '../container-pool.service';
import { ResizeDto } from './dto/resize.dto';
import {
  ContainerInfoDto,
  ErrorBodyDto,
  ExecResultDto,
  PoolStatsDto,
  RemovedContainerDto,
} from './dto/responses.dto';
import { RunRequestDto } from './dto/run-request.dto';
import { ContainerPoolErrorFilter } from './filters/container-pool-error.filter';
import { ADMIN_IDENTITY, AdminIdentity, AdminTokenGuard } from './guards/admin-token.guard';
import type { ContainerInfo, PoolStats } from '../interfaces/container.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { RunRequest } from '../interfaces/run-request.interface';
import {
  ADMIN_BEARER_SCHEME,
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from './openapi/swagger';
import { ContainerRefPipe } from './pipes/container-ref.pipe';
import { JsonObjectBodyPipe } from './pipes/json-object-body.pipe';

type AdminRequest = IncomingMessage & { [ADMIN_IDENTITY]?: AdminIdentity };

/** The validation of every body of the pool's routes; bound here so that no global pipe is needed. */
export const containerPoolValidationPipe = () =>
  new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
  });

export function toContainerDto(c: ContainerInfo): ContainerInfoDto {
  return {
    id: c.id,
    name: c.name,
    state: c.state,
    createdAt: c.createdAt.toISOString(),
    expiry: c.expiry.toISOString(),
    image: c.image,
  };
}

/** The ExecResult as JSON: the raw bytes as base64 (stdoutBase64, stderrBase64). */
export function toExecResultDto(r: ExecResult): ExecResultDto {
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    stdoutBase64: r.stdoutBytes.toString('base64'),
    stderrBase64: r.stderrBytes.toString('base64'),
    timedOut: r.timedOut,
    oomKilled: r.oomKilled,
    truncated: r.truncated,
    durationMs: r.durationMs,
    queuedMs: r.queuedMs,
    containerId: r.containerId,
    executionId: r.executionId,
  };
}

const E401 = { status: 401, description: 'Missing or wrong bearer token.', type: ErrorBodyDto };
const E403 = {
  status: 403,
  description: 'No admin token configured: the admin API is off.',
  type: ErrorBodyDto,
};
const E400 = {
  status: 400,
  description: 'Invalid request; the message names the field.',
  type: ErrorBodyDto,
};
const E413 = { status: 413, description: 'Body over maxBodyBytes.', type: ErrorBodyDto };
const E503 = {
  status: 503,
  description:
    'No container now (Retry-After), engine/image unavailable, drained or shutting down.',
  type: ErrorBodyDto,
};

/**
 * The admin API and the executions endpoint of one pool, at `adminPrefix` (default /admin/pool).
 * Every route needs `Authorization: Bearer <adminToken>`. The module routes a subclass of it per prefix
 * (container-pool.http.ts), so this class carries no @Controller path of its own.
 */
@ApiTags('pool admin')
@ApiBearerAuth(ADMIN_BEARER_SCHEME)
@UseGuards(AdminTokenGuard)
@UsePipes(new JsonObjectBodyPipe(), containerPoolValidationPipe())
@UseFilters(ContainerPoolErrorFilter)
export class ContainerPoolController implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger: Logger;

  constructor(
    private readonly pool: ContainerPoolService,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.logger = new Logger(`ContainerPoolAdmin:${pool.options.name}`);
  }

  /**
   * Nest's default JSON parser (100 kB) reads bodies before any module middleware, and Nest answers bodies over
   * its limit with a 500: say so once, since code and stdin of executions are often larger.
   */
  onApplicationBootstrap(): void {
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
    if (!this.pool.options.adminToken.length) {
      this.logger.warn(
        'The admin API is disabled: every admin route answers 403 because no admin token is configured. ' +
          'Set POOL_ADMIN_TOKEN (or the adminToken option; comma separated for rotation) to enable it.',
      );
    }
  }

  @Get()
  @ApiOperation({ summary: 'Pool statistics' })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  stats(): PoolStats {
    return this.pool.stats();
  }

  @Get('containers')
  @ApiOperation({ summary: "The pool's containers (idle, leased, creating, destroying)" })
  @ApiResponse({ status: 200, type: [ContainerInfoDto] })
  @ApiResponse(E401)
  @ApiResponse(E403)
  containers(): ContainerInfoDto[] {
    return this.pool.containers().map(toContainerDto);
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
  replenish(@Req() req: AdminRequest): Promise<PoolStats> {
    return this.audit(req, 'replenish', '', () => this.pool.replenish());
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
  resize(@Req() req: AdminRequest, @Body() body: ResizeDto): Promise<PoolStats> {
    if (body.size === undefined && body.maxContainers === undefined) {
      throw new BadRequestException(['size or maxContainers is required']);
    }
    const maxContainers = body.maxContainers ?? this.pool.stats().maxContainers;
    if (body.size !== undefined && body.size > maxContainers) {
      throw new BadRequestException([
        `size must not be greater than maxContainers (${maxContainers})`,
      ]);
    }
    const what = Object.entries(body)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    return this.audit(req, 'resize', what, () => Promise.resolve(this.pool.resize(body)));
  }

  @Post('drain')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Remove idle containers and stop refilling (and handing out) until resume',
  })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  drain(@Req() req: AdminRequest): Promise<PoolStats> {
    return this.audit(req, 'drain', '', () => this.pool.drain());
  }

  @Post('resume')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Serve and refill again after a drain' })
  @ApiResponse({ status: 200, type: PoolStatsDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  resume(@Req() req: AdminRequest): Promise<PoolStats> {
    return this.audit(req, 'resume', '', () => Promise.resolve(this.pool.resume()));
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
  removeContainer(
    @Req() req: AdminRequest,
    @Param('id', ContainerRefPipe) id: string,
  ): Promise<RemovedContainerDto> {
    return this.audit(req, 'remove-container', id, async () => {
      const container = this.pool.findContainer(id);
      if (!container) {
        throw new NotFoundException(`No container "${id}" in pool "${this.pool.options.name}".`);
      }
      const before = this.pool.containers().find((c) => c.id === container.id);
      await container.destroy();
      return {
        removed: toContainerDto(
          before ?? {
            id: container.id,
            name: container.name,
            state: 'destroying',
            createdAt: container.createdAt,
            expiry: container.expiry,
            image: this.pool.options.image,
          },
        ),
      };
    });
  }

  @Post('executions')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary:
      "Run a command or Python code in a fresh container (run()); 200 whatever the program's exit",
    description:
      'The raw output bytes are in stdoutBase64/stderrBase64. A client that disconnects before the answer ' +
      'aborts the execution and its container is removed.',
  })
  @ApiBody({ type: RunRequestDto })
  @ApiResponse({ status: 200, type: ExecResultDto })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E413)
  @ApiResponse({
    status: 502,
    description: 'The container died during the execution.',
    type: ErrorBodyDto,
  })
  @ApiResponse(E503)
  async execute(
    @Req() req: AdminRequest,
    @Res({ passthrough: true }) res: ServerResponse,
    @Body() body: RunRequestDto,
  ): Promise<ExecResultDto> {
    this.checkRunRequest(body);
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) abort.abort(new Error('the client disconnected'));
    };
    res.on('close', onClose);
    try {
      const what = body.cmd
        ? `cmd=${JSON.stringify(body.cmd[0])}`
        : `code=${body.code?.length ?? 0}B`;
      const result = await this.audit(req, 'execute', what, () =>
        this.pool.run({ ...body, signal: abort.signal } as RunRequest),
      );
      return toExecResultDto(result);
    } finally {
      res.off('close', onClose);
    }
  }

  /** Limits that depend on the pool's options; the DTO has checked the types. */
  private checkRunRequest(body: RunRequestDto): void {
    const o = this.pool.options;
    const problems: string[] = [];
    if ((body.cmd === undefined) === (body.code === undefined)) {
      problems.push('cmd or code: give exactly one of cmd (argv) and code (source text)');
    }
    if (body.language !== undefined && body.code === undefined) {
      problems.push('language is only allowed with code');
    }
    if (body.timeoutMs !== undefined && body.timeoutMs > o.maxExecTimeoutMs) {
      problems.push(`timeoutMs must not be greater than maxExecTimeoutMs (${o.maxExecTimeoutMs})`);
    }
    if (body.maxOutputBytes !== undefined && body.maxOutputBytes > o.maxOutputBytes) {
      problems.push(
        `maxOutputBytes must not be greater than the pool's maxOutputBytes (${o.maxOutputBytes})`,
      );
    }
    if (problems.length) throw new BadRequestException(problems);
  }

  /** Runs a state-changing action and logs who did what with which result. */
  private async audit<T>(
    req: AdminRequest,
    action: string,
    what: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    const token = req[ADMIN_IDENTITY]?.tokenFingerprint ?? '?';
    const started = performance.now();
    const head = `token=${token} action=${action}${what ? ` ${what}` : ''}`;
    try {
      const result = await fn();
      this.logger.log(
        `${head} result=ok${this.summary(result)} ms=${Math.round(performance.now() - started)}`,
      );
      return result;
    } catch (err) {
      const detail =
        err instanceof Error
          ? `${(err as { code?: string }).code ?? err.name}: ${err.message}`
          : String(err);
      this.logger.warn(
        `${head} result=error ${detail} ms=${Math.round(performance.now() - started)}`,
      );
      throw err;
    }
  }

  private summary(result: unknown): string {
    if (typeof result !== 'object' || result === null) return '';
    const r = result as Partial<PoolStats & ExecResult & RemovedContainerDto>;
    if (r.removed) return ` removed=${r.removed.name}`;
    if (r.executionId) return ` execution=${r.executionId} exit=${r.exitCode ?? '-'}`;
    if (r.idle !== undefined)
      return ` idle=${r.idle} leased=${r.leased} size=${r.size} max=${r.maxContainers}`;
    return '';
  }
}
