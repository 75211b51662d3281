import { Get } from '@nestjs/common';
import { ContainerPoolService } from '../container-pool.service';
import type { ProfileInfo } from '../interfaces/profile-info.interface';
import { AdminRoutes, E401, E403 } from './admin-routes';
import { ProfileInfoDto } from './dto/responses.dto';
import { RequireScope } from './guards/admin-token.guard';
import { ApiOperation, ApiResponse } from './openapi/swagger';

/**
 * GET <prefix>/profiles: every profile of the module (name, image, image id, transport, ready, stats). Each
 * profile's own routes are at <prefix>/profiles/<name>/... (the admin routes and executions).
 */
@AdminRoutes('pool admin')
export class ContainerPoolProfilesController {
  constructor(private readonly pool: ContainerPoolService) {}

  @Get('profiles')
  @RequireScope('read')
  @ApiOperation({ summary: "The module's profiles, each with whether it serves and its stats" })
  @ApiResponse({ status: 200, type: [ProfileInfoDto] })
  @ApiResponse(E401)
  @ApiResponse(E403)
  profiles(): ProfileInfo[] {
    return this.pool.profiles();
  }
}
