/**
 * A host process for the session lifecycle test: boots the pool (settings from POOL_*), opens a session, runs a
 * cell in it that leaves a background process behind, prints `SESSION <containerId>` then `READY <instanceId>`,
 * and stays up until killed.
 * Run with: node -r ts-node/register/transpile-only test/support/session-host.ts
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';

@Module({ imports: [ContainerPoolModule.forRoot({ readEnv: true })] })
class HostModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(HostModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  const pool = app.get(ContainerPoolService);
  await pool.initialize();
  const session = await pool.openSession();
  const r = await session.runCode(
    'import subprocess\nkept = subprocess.Popen(["sleep", "1000"], start_new_session=True)\nx = 41',
  );
  if (r.exitCode !== 0) throw new Error(`the cell failed: ${r.stderr}`);
  const info = session.info();
  process.stdout.write(`SESSION ${info.containerId}\n`);
  process.stdout.write(`READY ${pool.instanceId}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `session-host failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
