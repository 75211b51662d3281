/** Hosts a pool the way an application does: ContainerPoolModule.forRoot in a Nest application context. */
import 'reflect-metadata';
import { INestApplicationContext, LogLevel, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CONTAINER_DRIVER } from '../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../src/container-pool/container-pool.module';
import { ContainerPoolService } from '../src/container-pool/container-pool.service';
import type { ContainerDriver } from '../src/container-pool/engine/container-driver.interface';
import type {
  ContainerPoolModuleOptions,
  TransportSetting,
} from '../src/container-pool/interfaces/container-pool-options.interface';

export interface BenchPool {
  app: INestApplicationContext;
  pool: ContainerPoolService;
  driver: ContainerDriver;
  /** The pool's transport setting (every result's `transport` is checked against it unless `auto`). */
  transport: TransportSetting;
  /**
   * Time spent inside driver.exec() by the last execution (ms): run() minus this is the pool's own time.
   * NaN when the last execution made no driver exec (the runner transport talks over the attached stdio).
   */
  lastDriverExecMs: number;
  close(): Promise<void>;
}

/**
 * Starts a pool and waits for its first fill. `logger` defaults to errors only: the benchmark prints its own
 * report (the cost of the per-execution log line is measured separately). `transport` defaults to `exec`: the
 * benchmark always names the transport it measures (under the module's default, `auto`, a Python image would
 * silently run on the runner).
 */
export async function startBenchPool(
  options: ContainerPoolModuleOptions & { name: string; image: string },
  logger: LogLevel[] | false = ['error'],
): Promise<BenchPool> {
  const transport = options.transport ?? 'exec';
  @Module({
    imports: [ContainerPoolModule.forRoot({ pullPolicy: 'never', ...options, transport })],
  })
  class BenchPoolHostModule {}
  const app = await NestFactory.createApplicationContext(BenchPoolHostModule, { logger });
  const pool = app.get(ContainerPoolService);
  const driver = app.get<ContainerDriver>(CONTAINER_DRIVER);
  const host: BenchPool = {
    app,
    pool,
    driver,
    transport,
    lastDriverExecMs: NaN,
    close: () => app.close(),
  };
  // Time the engine part of each execution, to split run() into engine time and the pool's own time.
  const exec = driver.exec.bind(driver);
  driver.exec = async (target, request) => {
    const t0 = performance.now();
    try {
      return await exec(target, request);
    } finally {
      host.lastDriverExecMs = performance.now() - t0;
    }
  };
  try {
    await pool.initialize();
  } catch (err) {
    await app.close();
    throw err;
  }
  return host;
}

/** The pool is full and quiet: every idle slot filled, no create or removal in flight. */
export function isSettled(pool: ContainerPoolService): boolean {
  const s = pool.stats();
  return s.idle >= s.size && s.creating === 0 && s.destroying === 0 && s.leased === 0;
}

/** Waits until isSettled(), then `quietMs` more (the engine finishes its own tail work of a removal). */
export async function waitSettled(
  pool: ContainerPoolService,
  timeoutMs = 30_000,
  quietMs = 0,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!isSettled(pool)) {
    if (Date.now() > until) {
      throw new Error(
        `pool did not settle within ${timeoutMs} ms: ${JSON.stringify(pool.stats())}`,
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  if (quietMs > 0) await new Promise((r) => setTimeout(r, quietMs));
}
