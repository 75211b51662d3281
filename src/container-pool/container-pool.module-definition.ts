import { ConfigurableModuleBuilder } from '@nestjs/common';
import { ContainerPoolHttpExtras, withHttp } from './http/container-pool-http';
import type { ContainerPoolModuleOptions } from './interfaces/container-pool-options.interface';

/** Extras of forRoot()/forRootAsync() that shape the module itself rather than the pool. */
export interface ContainerPoolModuleExtras extends ContainerPoolHttpExtras {
  /** Register the module globally so that every module can inject ContainerPoolService. Default false. */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: CONTAINER_POOL_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ContainerPoolModuleOptions>({ moduleName: 'ContainerPool' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createContainerPoolOptions')
  .setExtras<ContainerPoolModuleExtras>(
    {
      isGlobal: false,
      http: false,
      adminApi: undefined,
      adminPrefix: undefined,
      healthPath: undefined,
      metricsPath: undefined,
    },
    (definition, extras) => withHttp({ ...definition, global: extras.isGlobal }, extras),
  )
  .build();
