import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ContainerPoolModule } from './index';

/** The runnable service: the module with settings from the environment (and `.env` when present). */
@Module({
  imports: [
    ConfigModule.forRoot({ envFilePath: ['.env'], cache: true }),
    ContainerPoolModule.forRoot({ isGlobal: true }),
  ],
})
export class AppModule {}
