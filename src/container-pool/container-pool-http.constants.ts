/** Injection token of the module's resolved HTTP settings (ContainerPoolHttpSettings). */
export const CONTAINER_POOL_HTTP_SETTINGS = Symbol('CONTAINER_POOL_HTTP_SETTINGS');
