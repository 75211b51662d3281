import { ConfigurableModuleBuilder } from '@nestjs/common';
import { ContainerPoolHttpExtras, withHttp } from './http/container-pool-http';
import type { ContainerPoolModuleOptions } from './interfaces/container-pool-options.interface';

/** Extras of forRoot()/forRootAsync() that shape the module itself rather than the pool. */
export interface ContainerPoolModuleExtras extends ContainerPoolHttpExtras {
  /** Register the module globally so that every module can inject ContainerPoolService. Default false. */
  isGlobal?: boolean;
  /**
   * The profiles to provide `@InjectContainerPool(name)` tokens for. forRoot() provides one for every profile of
   * its options (in code or from the environment) by itself; forRootAsync() cannot know them before its factory
   * runs, so list them here. A listed name the resolved options lack fails the start with UnknownProfileError.
   */
  profileNames?: string[];
}

const EXTRAS: { [K in keyof Required<ContainerPoolModuleExtras>]: ContainerPoolModuleExtras[K] } = {
  isGlobal: false,
  profileNames: undefined,
  http: false,
  adminApi: undefined,
  adminPrefix: undefined,
  healthPath: undefined,
  metricsPath: undefined,
};

/** The keys of forRoot()'s options that are extras, not pool options. */
export const MODULE_EXTRAS: ReadonlySet<string> = new Set(Object.keys(EXTRAS));

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: CONTAINER_POOL_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ContainerPoolModuleOptions>({ moduleName: 'ContainerPool' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createContainerPoolOptions')
  .setExtras<ContainerPoolModuleExtras>(EXTRAS, (definition, extras) =>
    withHttp({ ...definition, global: extras.isGlobal }, extras),
  )
  .build();
