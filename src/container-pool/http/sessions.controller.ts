import type { ServerResponse } from 'node:http';
import {
  Body,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Query,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { ContainerPoolService } from '../container-pool.service';
import { limitProblems, problemText } from '../execution/exec-request';
import type { OnOutput } from '../interfaces/output-event.interface';
import type {
  CodeResult,
  RunCodeOptions,
  Session,
  SessionExecResult,
  SessionRunRequest,
} from '../interfaces/session.interface';
import { AdminRoutes, E400, E401, E403, E413, E415, E503 } from './admin-routes';
import { Audit, AuditedRequest } from './audit.interceptor';
import { ErrorBodyDto } from './dto/responses.dto';
import {
  CodeErrorDto,
  CodeOutputDto,
  CodeResultDto,
  OutputDataDto,
  OpenSessionDto,
  SessionExecResultDto,
  SessionInfoDto,
  SessionRunDto,
} from './dto/session.dto';
import {
  ref,
  STREAMED_DESCRIPTION,
  streamedContent,
  streamExecution,
  streamFormatOf,
} from './execution-stream';
import {
  SESSION_BUSY_RETRY_AFTER_SECONDS,
  TOO_MANY_SESSIONS_RETRY_AFTER_SECONDS,
} from './filters/container-pool-error.filter';
import { RequireScope } from './guards/admin-token.guard';
import { httpError, invalidRequest, RequestProblem } from './http-errors';
import { toSessionInfoDto, toSessionResultDto } from './mappers';
import {
  ApiBody,
  ApiExtraModels,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiResponse,
} from './openapi/swagger';
import { callerOf, reachableOwner } from './sessions-api';

/** What the session routes' OpenAPI operations share: the id, and the answers for an id not reachable. */
export const SESSION_ID_PARAM = {
  name: 'id',
  description: 'The session id (POST .../sessions answers it).',
};
export const E404_SESSION = {
  status: 404,
  description:
    "SESSION_NOT_FOUND: no such session, or another caller's (a session is its opener's token's; only an " +
    'admin token reaches every one).',
  type: ErrorBodyDto,
};
export const E410_SESSION = {
  status: 410,
  description:
    'SESSION_CLOSED: closed (DELETE, its idle timeout or max lifetime, a loss, the shutdown): its state is ' +
    'gone; open a new one.',
  type: ErrorBodyDto,
};

const sessionWhat = (req: AuditedRequest) => `session=${JSON.stringify(req.params?.id ?? '')}`;

const callWhat = (req: AuditedRequest) => {
  const body = (req.body ?? {}) as { cmd?: unknown; code?: unknown };
  const what = Array.isArray(body.cmd)
    ? `cmd=${JSON.stringify(body.cmd[0])}`
    : `code=${typeof body.code === 'string' ? body.code.length : 0}B`;
  return `${sessionWhat(req)} ${what}`;
};

const callSummary = (r: unknown) =>
  r instanceof StreamableFile
    ? ' streamed'
    : ` exit=${String((r as { exitCode?: unknown }).exitCode)}` +
      ` interrupted=${String((r as { interrupted?: unknown }).interrupted)}` +
      ` stateLost=${String((r as { stateLost?: unknown }).stateLost)}`;

/**
 * The code-interpreter sessions under the prefix (issue #17), exec scope: open, list, describe, run code or
 * commands in (streamed as the execution route streams), interrupt, close. A session belongs to the fingerprint
 * of the token that opened it: another caller's is a 404 (SessionNotFoundError), an admin token reaches every
 * one. The files routes are SessionFilesController's (their bodies are bytes, not JSON).
 */
@AdminRoutes('sessions')
export class ContainerPoolSessionsController {
  constructor(private readonly svc: ContainerPoolService) {}

  /** The session `id` as the caller may reach it (SessionNotFoundError for another's, SessionClosedError). */
  private sessionOf(req: AuditedRequest, id: string): Session {
    return this.svc.getSession(id, { owner: reachableOwner(callerOf(req)) });
  }

  @Post('sessions')
  @RequireScope('exec')
  @HttpCode(HttpStatus.CREATED)
  @Audit({
    action: 'open-session',
    what: (req: AuditedRequest) => {
      const profile = (req.body as { profile?: unknown } | undefined)?.profile;
      return typeof profile === 'string' ? `profile=${JSON.stringify(profile)}` : '';
    },
    summary: (s: SessionInfoDto) => ` session=${s.id} container=${s.containerId.slice(0, 12)}`,
  })
  @ApiOperation({
    summary:
      'Open a code-interpreter session: one warm container with a persistent Python interpreter',
    description:
      "The session belongs to the caller's token (its fingerprint is the owner; the body cannot say another). " +
      'It is closed by DELETE, after idleTimeoutMs without a call, at its max lifetime, or when the pool shuts ' +
      'down; its container is never reused.',
  })
  @ApiBody({ type: OpenSessionDto })
  @ApiResponse({ status: 201, type: SessionInfoDto, description: 'Opened.' })
  @ApiResponse({
    ...E400,
    description:
      'Invalid request; the message names the field (UNKNOWN_PROFILE names `profile`, as does a profile that ' +
      "cannot hold sessions: exec transport, no Python >= 3.8; a maxLifetimeMs above the profile's " +
      'sessionMaxLifetimeMs names `maxLifetimeMs`).',
  })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E413)
  @ApiResponse(E415)
  @ApiResponse({
    status: 429,
    description:
      'TOO_MANY_SESSIONS: maxSessions (in all) or maxSessionsPerOwner (this token) are open; Retry-After: ' +
      `${TOO_MANY_SESSIONS_RETRY_AFTER_SECONDS} (seconds). Closing one of this token's sessions frees a place at once.`,
    type: ErrorBodyDto,
  })
  @ApiResponse(E503)
  async open(@Req() req: AuditedRequest, @Body() body: OpenSessionDto): Promise<SessionInfoDto> {
    const caller = callerOf(req);
    const session = await this.svc.openSession({
      ...(body.profile !== undefined && { profile: body.profile }),
      ...(body.idleTimeoutMs !== undefined && { idleTimeoutMs: body.idleTimeoutMs }),
      ...(body.maxLifetimeMs !== undefined && { maxLifetimeMs: body.maxLifetimeMs }),
      owner: caller.tokenFingerprint,
    });
    return toSessionInfoDto(session.info());
  }

  @Get('sessions')
  @RequireScope('exec')
  @ApiOperation({
    summary: "The caller's open sessions (?all=true: every caller's, admin token only)",
  })
  @ApiQuery({
    name: 'all',
    required: false,
    enum: ['true', 'false'],
    description: "true: every caller's open sessions; needs an admin token (403 otherwise).",
  })
  @ApiResponse({ status: 200, type: [SessionInfoDto] })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse({
    ...E403,
    description: `${E403.description} FORBIDDEN_SCOPE also for ?all=true with an exec token.`,
  })
  list(@Req() req: AuditedRequest, @Query('all') all?: unknown): SessionInfoDto[] {
    if (all !== undefined && all !== 'true' && all !== 'false') {
      throw invalidRequest([{ field: 'all', message: 'all must be true or false' }]);
    }
    const caller = callerOf(req);
    if (all === 'true') {
      if (caller.scope !== 'admin') {
        throw httpError(
          403,
          'FORBIDDEN_SCOPE',
          "?all=true lists every caller's sessions and needs a token of the admin scope (adminToken); " +
            'without it the list is your own sessions.',
        );
      }
      return this.svc.sessions().map(toSessionInfoDto);
    }
    return this.svc.sessions({ owner: caller.tokenFingerprint }).map(toSessionInfoDto);
  }

  @Get('sessions/:id')
  @RequireScope('exec')
  @ApiOperation({ summary: 'One session' })
  @ApiParam(SESSION_ID_PARAM)
  @ApiResponse({ status: 200, type: SessionInfoDto })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  describe(@Req() req: AuditedRequest, @Param('id') id: string): SessionInfoDto {
    return toSessionInfoDto(this.sessionOf(req, id).info());
  }

  @Post('sessions/:id/executions')
  @RequireScope('exec')
  @HttpCode(HttpStatus.OK)
  @Audit({ action: 'session-exec', what: callWhat, summary: callSummary })
  @ApiOperation({
    summary:
      "Run Python (`code`, in the session's persistent interpreter) or a command (`cmd`) in the session",
    description:
      'Calls of one session run one at a time, in order; beyond maxQueuedCalls waiting, 429 SESSION_BUSY. An ' +
      "exception in the code is the result's `error` (200), never an error answer. The result is that of " +
      'POST .../executions plus `interrupted` and `stateLost`, and for code `executionCount`, `error`, and ' +
      '`outputs` (rich outputs by MIME type, images as base64; the final result line when streamed) with ' +
      '`outputsTruncated`. A ' +
      'client that disconnects before the answer interrupts its call (as POST .../interrupt); the session ' +
      'stays open. ' +
      STREAMED_DESCRIPTION.replace(
        'one that disconnects kills it',
        'one that disconnects interrupts it',
      ),
  })
  @ApiParam(SESSION_ID_PARAM)
  @ApiBody({ type: SessionRunDto })
  @ApiExtraModels(
    CodeResultDto,
    SessionExecResultDto,
    CodeErrorDto,
    CodeOutputDto,
    OutputDataDto,
    ErrorBodyDto,
  )
  @ApiResponse({
    status: 200,
    description:
      'The result (application/json: CodeResultDto for code, SessionExecResultDto for cmd), or the streamed ' +
      'lines (NDJSON, SSE) on Accept.',
    content: streamedContent({
      oneOf: [ref('CodeResultDto'), ref('SessionExecResultDto')],
    }) as never,
  })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  @ApiResponse(E413)
  @ApiResponse(E415)
  @ApiResponse({
    status: 429,
    description: `SESSION_BUSY: the session's call queue is full; Retry-After: ${SESSION_BUSY_RETRY_AFTER_SECONDS}.`,
    type: ErrorBodyDto,
  })
  @ApiResponse({
    status: 502,
    description:
      "SESSION_LOST: the session's container was lost (it died, or the timeout ladder recycled it): the " +
      'session is closed and its state gone; open a new one.',
    type: ErrorBodyDto,
  })
  async execute(
    @Req() req: AuditedRequest,
    @Res({ passthrough: true }) res: ServerResponse,
    @Param('id') id: string,
    @Body() body: SessionRunDto,
  ): Promise<CodeResultDto | SessionExecResultDto | StreamableFile> {
    const session = this.sessionOf(req, id);
    const problems: RequestProblem[] = limitProblems(
      body,
      this.svc.pool(session.profile).options,
    ).map((p) => ({ field: p.field, message: problemText(p) }));
    if (body.env !== undefined && body.code !== undefined) {
      problems.push({
        field: 'env',
        message: 'env is only allowed with cmd (code sets os.environ in the interpreter)',
      });
    }
    if (body.maxOutputs !== undefined && body.cmd !== undefined) {
      problems.push({
        field: 'maxOutputs',
        message: 'maxOutputs is only allowed with code (a command has no rich outputs)',
      });
    }
    if (problems.length) throw invalidRequest(problems);

    const encoding = body.outputEncoding ?? 'text';
    // A client that leaves before the answer aborts its call: taken out of the queue, or interrupted (the
    // ladder) when it runs; the session stays open.
    const left = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) left.abort(new Error('the client disconnected'));
    };
    res.on('close', onClose);
    const call = (onOutput?: OnOutput): Promise<CodeResult | SessionExecResult> => {
      const common = {
        ...(body.stdin !== undefined && { stdin: body.stdin }),
        ...(body.timeoutMs !== undefined && { timeoutMs: body.timeoutMs }),
        ...(body.maxOutputBytes !== undefined && { maxOutputBytes: body.maxOutputBytes }),
        ...(onOutput && { onOutput }),
        signal: left.signal,
      };
      if (body.code !== undefined) {
        const opts: RunCodeOptions = {
          ...common,
          ...(body.maxOutputs !== undefined && { maxOutputs: body.maxOutputs }),
        };
        return session.runCode(body.code, opts);
      }
      const request: SessionRunRequest = {
        cmd: body.cmd!,
        ...(body.env !== undefined && { env: body.env }),
        ...common,
      };
      return session.run(request);
    };
    const format = streamFormatOf(req.headers.accept);
    if (format) {
      return streamExecution<CodeResult | SessionExecResult>({
        format,
        encoding,
        run: async (onOutput) => {
          try {
            return await call(onOutput);
          } finally {
            res.off('close', onClose);
          }
        },
        toResult: toSessionResultDto,
      });
    }
    try {
      return toSessionResultDto(await call(), encoding);
    } finally {
      res.off('close', onClose);
    }
  }

  @Post('sessions/:id/interrupt')
  @RequireScope('exec')
  @HttpCode(HttpStatus.NO_CONTENT)
  @Audit({ action: 'interrupt-session', what: sessionWhat })
  @ApiOperation({
    summary:
      'Interrupt the running call (KeyboardInterrupt, then the timeout ladder); 204 also when none runs',
    description:
      'The interrupted call answers its own caller (`interrupted: true`); queued calls still run after it.',
  })
  @ApiParam(SESSION_ID_PARAM)
  @ApiResponse({ status: 204, description: 'Interrupted, or nothing was running.' })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  async interrupt(@Req() req: AuditedRequest, @Param('id') id: string): Promise<void> {
    await this.sessionOf(req, id).interrupt();
  }

  @Post('sessions/:id/restart')
  @RequireScope('exec')
  @HttpCode(HttpStatus.NO_CONTENT)
  @Audit({ action: 'restart-session', what: sessionWhat })
  @ApiOperation({
    summary:
      'Restart the interpreter: every process of the session but the runner is killed, the state is gone',
    description:
      'A running call ends (its answer says `stateLost: true`); the next call starts from a fresh interpreter ' +
      '(`executionCount` 1). When the kill cannot be confirmed, the session is lost (502 SESSION_LOST).',
  })
  @ApiParam(SESSION_ID_PARAM)
  @ApiResponse({ status: 204, description: 'Restarted.' })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  @ApiResponse({
    status: 502,
    description:
      "SESSION_LOST: the restart could not be confirmed: the session's container was recycled.",
    type: ErrorBodyDto,
  })
  async restart(@Req() req: AuditedRequest, @Param('id') id: string): Promise<void> {
    await this.sessionOf(req, id).restart();
  }

  @Delete('sessions/:id')
  @RequireScope('exec')
  @HttpCode(HttpStatus.NO_CONTENT)
  @Audit({ action: 'close-session', what: sessionWhat })
  @ApiOperation({
    summary: 'Close the session: its container is removed, queued calls answer 410',
  })
  @ApiParam(SESSION_ID_PARAM)
  @ApiResponse({ status: 204, description: 'Closed.' })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  async close(@Req() req: AuditedRequest, @Param('id') id: string): Promise<void> {
    await this.sessionOf(req, id).close();
  }
}
