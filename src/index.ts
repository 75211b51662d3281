export * from './container-pool/container-pool.module';
export * from './container-pool/container-pool.service';
export {
  CONTAINER_POOL_MODULE_OPTIONS,
  type ContainerPoolModuleExtras,
} from './container-pool/container-pool.module-definition';
export * from './container-pool/container-pool.constants';
export {
  DEFAULT_OPTIONS,
  envName,
  poolEnvConfig,
  readPoolEnv,
  resolvePoolOptions,
} from './container-pool/config';
export * from './container-pool/errors';
export * from './container-pool/interfaces';
export * from './container-pool/engine/container-driver.interface';
export { DockerDriver } from './container-pool/engine/docker/docker.driver';
export {
  ContainerPoolHttpModule,
  type ContainerPoolHttpExtras,
  type ContainerPoolHttpOptions,
} from './container-pool/http/container-pool-http';
export { ContainerPoolController } from './container-pool/http/admin.controller';
export { ContainerPoolExecutionsController } from './container-pool/http/executions.controller';
export { RunRequestDto } from './container-pool/http/dto/run-request.dto';
export { ResizeDto } from './container-pool/http/dto/resize.dto';
export * from './container-pool/http/dto/responses.dto';
export {
  ContainerPoolErrorFilter,
  errorResponseOf,
  httpMappingOf,
  type ContainerPoolErrorBody,
} from './container-pool/http/filters/container-pool-error.filter';
export {
  AdminTokenGuard,
  MetricsAccessGuard,
  tokenFingerprint,
  type AdminIdentity,
} from './container-pool/http/guards/admin-token.guard';
export { ContainerPoolHealthIndicator } from './container-pool/health/container-pool.health';
export { ContainerPoolMetrics } from './container-pool/metrics/container-pool.metrics';
export { ADMIN_BEARER_SCHEME } from './container-pool/http/openapi/swagger';
export { setupContainerPoolDocs } from './container-pool/http/openapi/document';
