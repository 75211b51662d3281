/**
 * A minimal host process for lifecycle tests: boots a Nest app context with the pool (settings from POOL_*),
 * prints `READY <instanceId>` once the pool is filled, and stays up until signalled.
 * Run with: node -r ts-node/register/transpile-only test/support/pool-host.ts
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';

// A library host reads no environment unless it opts in: this one takes its settings from POOL_*.
@Module({ imports: [ContainerPoolModule.forRoot({ readEnv: true })] })
class HostModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(HostModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  const pool = app.get(ContainerPoolService);
  await pool.initialize();
  process.stdout.write(`READY ${pool.instanceId}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`pool-host failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
