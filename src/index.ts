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
