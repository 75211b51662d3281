import {
  applyDecorators,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import type { ValidationError } from 'class-validator';
import { AuditInterceptor, AuditStartGuard } from './audit.interceptor';
import { invalidRequest, RequestProblem } from './http-errors';
import { ErrorBodyDto } from './dto/responses.dto';
import { ContainerPoolErrorFilter } from './filters/container-pool-error.filter';
import { AdminTokenGuard } from './guards/admin-token.guard';
import { ADMIN_BEARER_SCHEME, ApiBearerAuth, ApiTags } from './openapi/swagger';
import { BodyErrorGuard } from './middleware/json-body.middleware';
import { JsonObjectBodyPipe } from './pipes/json-object-body.pipe';

/** The validation of every body of the pool's routes; bound here so that no global pipe is needed. */
export const containerPoolValidationPipe = () =>
  new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => invalidRequest(problemsOf(errors)),
  });

/** class-validator's errors as one problem per failed constraint, nested fields as `a.b`. */
function problemsOf(errors: ValidationError[], parent = ''): RequestProblem[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...problemsOf(e.children ?? [], field)];
  });
}

/**
 * What every controller under the admin prefix carries: the bearer guard, its own body and validation pipes,
 * the error filter, the audit of state-changing routes and executions (its first guard notes the request, so
 * that a refusal before the handler is audited too), and the OpenAPI tag and security scheme.
 */
export const AdminRoutes = (tag: string) =>
  applyDecorators(
    ApiTags(tag),
    ApiBearerAuth(ADMIN_BEARER_SCHEME),
    UseGuards(AuditStartGuard, AdminTokenGuard, BodyErrorGuard),
    UsePipes(new JsonObjectBodyPipe(), containerPoolValidationPipe()),
    UseFilters(ContainerPoolErrorFilter),
    UseInterceptors(AuditInterceptor),
  );

export const E401 = {
  status: 401,
  description: 'Missing or wrong bearer token.',
  type: ErrorBodyDto,
};
export const E403 = {
  status: 403,
  description:
    'FORBIDDEN_SCOPE: the token is of a scope that may not call this route; API_DISABLED: no token is ' +
    'configured at all.',
  type: ErrorBodyDto,
};
export const E415 = {
  status: 415,
  description: 'The body is not JSON (Content-Type), not UTF-8, or compressed.',
  type: ErrorBodyDto,
};
export const E400 = {
  status: 400,
  description: 'Invalid request; the message names the field.',
  type: ErrorBodyDto,
};
export const E413 = { status: 413, description: 'Body over maxBodyBytes.', type: ErrorBodyDto };
export const E503 = {
  status: 503,
  description:
    'No container now (Retry-After), engine/image unavailable, drained or shutting down.',
  type: ErrorBodyDto,
};
