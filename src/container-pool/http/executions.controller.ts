import type { ServerResponse } from 'node:http';
import { Body, HttpCode, HttpStatus, Post, Res } from '@nestjs/common';
import { ContainerPoolService } from '../container-pool.service';
import { limitProblems, problemText } from '../execution/exec-request';
import type { RunRequest } from '../interfaces/run-request.interface';
import { AdminRoutes, E400, E401, E403, E413, E503 } from './admin-routes';
import { Audit, AuditedRequest } from './audit.interceptor';
import { ErrorBodyDto, ExecResultDto } from './dto/responses.dto';
import { RunRequestDto } from './dto/run-request.dto';
import { RequireScope } from './guards/admin-token.guard';
import { invalidRequest } from './http-errors';
import { toExecResultDto } from './mappers';
import { ApiBody, ApiOperation, ApiResponse } from './openapi/swagger';

const executeWhat = (req: AuditedRequest) => {
  const body = (req.body ?? {}) as { cmd?: unknown; code?: unknown };
  if (Array.isArray(body.cmd)) return `cmd=${JSON.stringify(body.cmd[0])}`;
  return `code=${typeof body.code === 'string' ? body.code.length : 0}B`;
};

const executeSummary = (r: ExecResultDto) =>
  ` execution=${r.executionId} exit=${r.exitCode ?? '-'}`;

/**
 * POST <adminPrefix>/executions: run()'s request as JSON, bearer token required. A client that disconnects
 * before the answer aborts the execution.
 */
@AdminRoutes('pool admin')
export class ContainerPoolExecutionsController {
  constructor(private readonly pool: ContainerPoolService) {}

  @Post('executions')
  @RequireScope('exec')
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
  @Audit({ action: 'execute', what: executeWhat, summary: executeSummary })
  async execute(
    @Res({ passthrough: true }) res: ServerResponse,
    @Body() body: RunRequestDto,
  ): Promise<ExecResultDto> {
    const problems = limitProblems(body, this.pool.options);
    if (problems.length) {
      throw invalidRequest(problems.map((p) => ({ field: p.field, message: problemText(p) })));
    }
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableEnded) abort.abort(new Error('the client disconnected'));
    };
    res.on('close', onClose);
    try {
      return toExecResultDto(await this.pool.run({ ...body, signal: abort.signal } as RunRequest));
    } finally {
      res.off('close', onClose);
    }
  }
}
