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
} from './container-pool/container-pool.config';
export * from './container-pool/errors';
export * from './container-pool/interfaces';
export * from './container-pool/driver/container-driver.interface';
export { DockerDriver } from './container-pool/driver/docker.driver';
export {
  CONTAINER_POOL_HTTP_SETTINGS,
  type ContainerPoolHttpExtras,
  type ContainerPoolHttpSettings,
} from './container-pool/container-pool.http';
export { ContainerPoolController } from './container-pool/container-pool.controller';
export { RunRequestDto } from './container-pool/dto/run-request.dto';
export { ResizeDto } from './container-pool/dto/resize.dto';
export * from './container-pool/dto/responses.dto';
export {
  ContainerPoolErrorFilter,
  errorResponseOf,
  httpMappingOf,
  type ContainerPoolErrorBody,
} from './container-pool/filters/container-pool-error.filter';
export {
  AdminTokenGuard,
  MetricsAccessGuard,
  tokenFingerprint,
  type AdminIdentity,
} from './container-pool/guards/admin-token.guard';
export { ContainerPoolHealthIndicator } from './container-pool/health/container-pool.health';
export { ContainerPoolMetrics } from './container-pool/metrics/container-pool.metrics';
export { ADMIN_BEARER_SCHEME } from './container-pool/openapi/swagger';
export { setupContainerPoolDocs } from './container-pool/openapi/document';
