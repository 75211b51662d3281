/**
 * The OpenAPI decorators the pool's controllers and DTOs use, from @nestjs/swagger when the host app has it
 * (an optional peer dependency) and as no-ops otherwise, so the module runs without it. They are `@internal`:
 * `stripInternal` drops them from the published .d.ts, which must never name the optional peer.
 */
import type * as Swagger from '@nestjs/swagger';

function load(): typeof Swagger | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@nestjs/swagger') as typeof Swagger;
  } catch {
    return undefined;
  }
}

const swagger = load();

/** Whether @nestjs/swagger is installed. */
export const swaggerAvailable = swagger !== undefined;

const noop = (): any => () => undefined;

/** @internal */
export const ApiBearerAuth: typeof Swagger.ApiBearerAuth = swagger?.ApiBearerAuth ?? noop;
/** @internal */
export const ApiBody: typeof Swagger.ApiBody = swagger?.ApiBody ?? noop;
/** @internal */
export const ApiConsumes: typeof Swagger.ApiConsumes = swagger?.ApiConsumes ?? noop;
/** @internal */
export const ApiExtraModels: typeof Swagger.ApiExtraModels = swagger?.ApiExtraModels ?? noop;
/** @internal */
export const ApiOperation: typeof Swagger.ApiOperation = swagger?.ApiOperation ?? noop;
/** @internal */
export const ApiParam: typeof Swagger.ApiParam = swagger?.ApiParam ?? noop;
/** @internal */
export const ApiProduces: typeof Swagger.ApiProduces = swagger?.ApiProduces ?? noop;
/** @internal */
export const ApiProperty: typeof Swagger.ApiProperty = swagger?.ApiProperty ?? noop;
/** @internal */
export const ApiPropertyOptional: typeof Swagger.ApiPropertyOptional =
  swagger?.ApiPropertyOptional ?? noop;
/** @internal */
export const ApiQuery: typeof Swagger.ApiQuery = swagger?.ApiQuery ?? noop;
/** @internal */
export const ApiResponse: typeof Swagger.ApiResponse = swagger?.ApiResponse ?? noop;
/** @internal */
export const ApiTags: typeof Swagger.ApiTags = swagger?.ApiTags ?? noop;

/** Name of the bearer security scheme the admin routes declare (add it with DocumentBuilder.addBearerAuth). */
export const ADMIN_BEARER_SCHEME = 'pool-admin-token';
