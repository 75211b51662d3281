// The public API of container-pool. What is not exported here is internal and may change in any release.
export * from './container-pool/container-pool.module';
export { ContainerPoolService, type ProfileOption } from './container-pool/container-pool.service';
export { ContainerPool } from './container-pool/profiles/container-pool';
export { InjectContainerPool } from './container-pool/container-pool.decorators';
export { type ContainerPoolModuleExtras } from './container-pool/container-pool.module-definition';
export {
  CONTAINER_DRIVER,
  CONTAINER_POOL_RESOLVED_OPTIONS,
  getContainerPoolToken,
  LABEL_PREFIX,
  LABELS,
  MANAGED_BY_VALUE,
} from './container-pool/container-pool.constants';
export * from './container-pool/errors';
export * from './container-pool/interfaces';
export * from './container-pool/engine/container-driver.interface';
export {
  DockerDriver,
  type DockerConnectionOptions,
  type DockerContainerHandle,
} from './container-pool/engine/docker';
export {
  ContainerPoolHttpModule,
  type ContainerPoolHttpExtras,
  type ContainerPoolHttpOptions,
} from './container-pool/http/container-pool-http';
export { type ContainerPoolErrorBody } from './container-pool/http/filters/container-pool-error.filter';
export { type TokenScope } from './container-pool/http/guards/admin-token.guard';
export { ContainerPoolHealthIndicator } from './container-pool/health/container-pool.health';
export { ContainerPoolMetrics } from './container-pool/metrics/container-pool.metrics';
export { ADMIN_BEARER_SCHEME } from './container-pool/http/openapi/swagger';
export { setupContainerPoolDocs } from './container-pool/http/openapi/document';
