export * from './docker.driver';
export * from './docker.types';
export { sandboxEnv, toCreateOptions } from './docker-create-options';
