import type { ServerResponse } from 'node:http';
import { Body, HttpCode, HttpStatus, Post, Req, Res, StreamableFile } from '@nestjs/common';
import { ContainerPoolService } from '../container-pool.service';
import { limitProblems, problemText } from '../execution/exec-request';
import { executionLogContext } from '../execution/log-context';
import type { OnOutput } from '../interfaces/output-event.interface';
import type { RunRequest } from '../interfaces/run-request.interface';
import type { ContainerPool } from '../profiles/container-pool';
import { AdminRoutes, E400, E401, E403, E413, E415, E503 } from './admin-routes';
import { AUDIT_RECORD } from './audit-record';
import { Audit, AuditedRequest } from './audit.interceptor';
import { ErrorBodyDto, ExecResultDto } from './dto/responses.dto';
import { RunRequestDto } from './dto/run-request.dto';
import {
  STREAMED_DESCRIPTION,
  streamedContent,
  streamExecution,
  streamFormatOf,
} from './execution-stream';
import { ADMIN_IDENTITY, RequireScope } from './guards/admin-token.guard';
import { invalidRequest } from './http-errors';
import { toExecResultDto, toRunFiles } from './mappers';
import { ApiBody, ApiExtraModels, ApiOperation, ApiResponse } from './openapi/swagger';
import { poolOfRoute, ProfileName } from './profile-route';

const executeWhat = (req: AuditedRequest) => {
  const body = (req.body ?? {}) as { cmd?: unknown; code?: unknown };
  if (Array.isArray(body.cmd)) return `cmd=${JSON.stringify(body.cmd[0])}`;
  return `code=${typeof body.code === 'string' ? body.code.length : 0}B`;
};

/**
 * The collected bytes whose base64 fits maxBodyBytes beside the rest of the answer: both output streams (text
 * and base64 each, at their cap) and 64 KiB for the other fields and the files' JSON.
 */
export function collectBudget(maxBodyBytes: number, maxOutputBytes: number): number {
  const rest = 64 * 1024 + 2 * 3 * maxOutputBytes;
  return Math.max(0, Math.floor(((maxBodyBytes - rest) * 3) / 4));
}

/**
 * POST <adminPrefix>/executions: run()'s request as JSON, bearer token required. A client that disconnects
 * before the answer aborts the execution.
 */
@AdminRoutes('pool admin')
export class ContainerPoolExecutionsController {
  constructor(private readonly pool: ContainerPoolService) {}

  /**
   * The profile of the route's path, else the body's `profile`, else the default one. An unknown profile in the
   * body is a 400 naming the field; one in the path a 404; both given and different a 400.
   */
  private poolOf(body: RunRequestDto, routeProfile: string | undefined): ContainerPool {
    if (routeProfile !== undefined) {
      const pool = poolOfRoute(this.pool, routeProfile);
      if (body.profile !== undefined && body.profile !== routeProfile) {
        throw invalidRequest([
          {
            field: 'profile',
            message: `profile "${body.profile}" differs from the route's profile "${routeProfile}"; omit it or use POST .../executions`,
          },
        ]);
      }
      return pool;
    }
    return this.pool.pool(body.profile);
  }

  @Post('executions')
  @RequireScope('exec')
  @Audit({ action: 'execute', what: executeWhat, ownLine: true })
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary:
      "Run a command or Python code in a fresh container (run()); 200 whatever the program's exit",
    description:
      'The output is text; stdoutBase64/stderrBase64 carry a stream\'s raw bytes with "outputEncoding": "base64", ' +
      'or when they are not valid UTF-8. A client that disconnects before the answer ' +
      'aborts the execution and its container is removed. ' +
      STREAMED_DESCRIPTION,
  })
  @ApiBody({ type: RunRequestDto })
  @ApiExtraModels(ExecResultDto, ErrorBodyDto)
  @ApiResponse({
    status: 200,
    description: 'The result (application/json), or the streamed lines (NDJSON, SSE) on Accept.',
    // Plain OpenAPI 3 JSON: the optional peer's types are not named outside openapi/swagger.ts.
    content: streamedContent() as never,
  })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E413)
  @ApiResponse(E415)
  @ApiResponse({
    status: 502,
    description: 'The container died during the execution.',
    type: ErrorBodyDto,
  })
  @ApiResponse(E503)
  async execute(
    @Req() req: AuditedRequest,
    @Res({ passthrough: true }) res: ServerResponse,
    @Body() body: RunRequestDto,
    @ProfileName() routeProfile?: string,
  ): Promise<ExecResultDto | StreamableFile> {
    const pool = this.poolOf(body, routeProfile);
    const problems = limitProblems(body, pool.options);
    const runFiles = toRunFiles(body.files);
    if (problems.length || runFiles.problems.length) {
      throw invalidRequest([
        ...problems.map((p) => ({ field: p.field, message: problemText(p) })),
        ...runFiles.problems,
      ]);
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) abort.abort(new Error('the client disconnected'));
    };
    res.on('close', onClose);
    const format = streamFormatOf(req.headers.accept);
    let streaming = false;
    try {
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the profile chose the pool
      const { outputEncoding, profile: _profile, ...request } = body;
      // One log line per execution (the executor's), naming the caller's token and what it ran.
      const ctx = {
        words:
          `token=${req[ADMIN_IDENTITY]?.tokenFingerprint ?? '?'}` +
          `${(routeProfile ?? body.profile) ? ` profile=${pool.name}` : ''} ${executeWhat(req)}`,
        logged: false,
      };
      const markLogged = () => {
        // Refused before it ran (no container, invalid): the executor wrote no line, the error filter's says
        // why (auditError), as for a request refused before the handler.
        const record = req[AUDIT_RECORD];
        if (record && ctx.logged) record.logged = true;
      };
      // The run of either answer; what is collected must fit the answer as base64 (with room for the rest).
      const runBounded = (extra: Pick<RunRequest, 'onOutput'>) =>
        pool.runBounded(
          {
            ...request,
            ...(runFiles.files && { files: runFiles.files }),
            signal: abort.signal,
            ...extra,
          } as RunRequest,
          collectBudget(
            pool.options.maxBodyBytes,
            body.maxOutputBytes ?? pool.options.maxOutputBytes,
          ),
        );
      if (format) {
        // Lines as the output arrives (see streamExecution); the close listener stays until the run is over.
        const run = (onOutput: OnOutput) =>
          executionLogContext
            .run(ctx, () => runBounded({ onOutput }))
            .finally(() => res.off('close', onClose));
        streaming = true;
        return await streamExecution({
          format,
          encoding: outputEncoding ?? 'text',
          run,
          onLateError: markLogged,
          acquireTimeoutMs: pool.options.acquireTimeoutMs,
        }).catch((err: unknown) => {
          markLogged();
          throw err;
        });
      }
      const result = await executionLogContext
        .run(ctx, () => runBounded({}))
        .catch((err: unknown) => {
          markLogged();
          throw err;
        });
      return toExecResultDto(result, outputEncoding);
    } finally {
      if (!streaming) res.off('close', onClose);
    }
  }
}
