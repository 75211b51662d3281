import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ContainerPoolModule } from './index';

/**
 * The runnable service: the module with settings from the environment (and `.env` when present), serving its
 * HTTP routes (admin API and executions under /admin/pool, /health, /metrics).
 */
@Module({
  imports: [
    ConfigModule.forRoot({ envFilePath: ['.env'], cache: true }),
    ContainerPoolModule.forRoot({ isGlobal: true, readEnv: true, http: true }),
  ],
})
export class AppModule {}
