import { Module } from '@nestjs/common';
import { ContainerPoolModule } from './index';

/**
 * The runnable service: the module with settings from the environment (which `serve()` fills from `./.env`
 * first, when present), serving its HTTP routes (admin API and executions under /admin/pool, /health, /metrics).
 */
@Module({
  imports: [ContainerPoolModule.forRoot({ isGlobal: true, readEnv: true, http: true })],
})
export class AppModule {}
