import { Get, HttpCode, HttpStatus, Param, Put, Req, StreamableFile } from '@nestjs/common';
import { ContainerPoolService } from '../container-pool.service';
import { AdminRoutes, E400, E401, E403, E413, E415 } from './admin-routes';
import { Audit, AuditedRequest } from './audit.interceptor';
import { RequireScope } from './guards/admin-token.guard';
import { OCTET_STREAM } from './middleware/octet-body.middleware';
import {
  ApiBody,
  ApiConsumes,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiResponse,
} from './openapi/swagger';
import { callerOf, reachableOwner, sessionFilePath } from './sessions-api';
import { E404_SESSION, E410_SESSION, SESSION_ID_PARAM } from './sessions.controller';

/** Marks a controller whose bodies are bytes: OctetBodyMiddleware reads them, not JsonBodyMiddleware. */
export const RAW_BODY_ROUTES = Symbol('container-pool:raw-body-routes');

const PATH_PARAM = {
  name: 'path',
  description:
    'A path relative to the work dir, e.g. `data/in.csv`. Segments that are empty, `.` or `..`, or that hold ' +
    'a `/` (`%2F`) are a 400 naming `path`.',
};

const fileWhat = (req: AuditedRequest) => {
  const segments = (req.params as Record<string, unknown> | undefined)?.path;
  const path = Array.isArray(segments)
    ? segments.join('/')
    : typeof segments === 'string'
      ? segments
      : '';
  return `session=${JSON.stringify(req.params?.id ?? '')} path=${JSON.stringify(path)}`;
};

/**
 * The files of a session's container over HTTP: PUT writes the body's bytes (application/octet-stream, at most
 * maxBodyBytes) to a path under the work dir, GET answers a file's bytes. Ownership as on every session route.
 */
@AdminRoutes('sessions')
export class ContainerPoolSessionFilesController {
  static readonly [RAW_BODY_ROUTES] = true;

  constructor(private readonly svc: ContainerPoolService) {}

  @Put('sessions/:id/files/*path')
  @RequireScope('exec')
  @HttpCode(HttpStatus.NO_CONTENT)
  @Audit({
    action: 'session-write-file',
    what: (req: AuditedRequest & { body?: unknown }) =>
      `${fileWhat(req)} bytes=${Buffer.isBuffer(req.body) ? req.body.length : 0}`,
  })
  @ApiOperation({
    summary: "Write a file in the session's container (parents created, replaced atomically)",
  })
  @ApiParam(SESSION_ID_PARAM)
  @ApiParam(PATH_PARAM)
  @ApiConsumes(OCTET_STREAM)
  @ApiBody({
    description: "The file's bytes, at most maxBodyBytes (an empty body writes an empty file).",
    required: true,
    schema: { type: 'string', format: 'binary' },
  })
  @ApiResponse({ status: 204, description: 'Written.' })
  @ApiResponse(E400)
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  @ApiResponse(E413)
  @ApiResponse({
    ...E415,
    description: 'The body is not application/octet-stream, or compressed.',
  })
  async write(
    @Req() req: AuditedRequest & { body?: unknown },
    @Param('id') id: string,
    @Param('path') segments: unknown,
  ): Promise<void> {
    const path = sessionFilePath(segments);
    const session = this.svc.getSession(id, { owner: reachableOwner(callerOf(req)) });
    const data = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    await session.files.write(path, data);
  }

  @Get('sessions/:id/files/*path')
  @RequireScope('exec')
  @ApiOperation({ summary: "A file of the session's container, as bytes" })
  @ApiParam(SESSION_ID_PARAM)
  @ApiParam(PATH_PARAM)
  @ApiProduces(OCTET_STREAM)
  @ApiResponse({
    status: 200,
    description: "The file's bytes.",
    content: { [OCTET_STREAM]: { schema: { type: 'string', format: 'binary' } } },
  })
  @ApiResponse({
    ...E400,
    description: `${E400.description} Also a file above maxFileBytes, or a path that is no regular file.`,
  })
  @ApiResponse(E401)
  @ApiResponse(E403)
  @ApiResponse(E404_SESSION)
  @ApiResponse(E410_SESSION)
  async read(
    @Req() req: AuditedRequest,
    @Param('id') id: string,
    @Param('path') segments: unknown,
  ): Promise<StreamableFile> {
    const path = sessionFilePath(segments);
    const session = this.svc.getSession(id, { owner: reachableOwner(callerOf(req)) });
    const data = await session.files.read(path);
    return new StreamableFile(data, { type: OCTET_STREAM, length: data.length });
  }
}
