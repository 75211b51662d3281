import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';
import type { ExecResult } from '../../src/container-pool/interfaces/exec-result.interface';
import {
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
  type TransportName,
} from './integration';

const MiB = 1024 * 1024;

export { TRANSPORTS, type TransportName } from './integration';

/**
 * Small limits that make hostile workloads hit them fast. tmp + workdir + shm (40 MiB) stay below the memory
 * limit, as the config requires; the lifetime fits the longest execution.
 */
export const HOSTILE_LIMITS = {
  memoryBytes: 128 * MiB,
  tmpSizeBytes: 16 * MiB,
  workdirSizeBytes: 16 * MiB,
  shmSizeBytes: 8 * MiB,
  fileSizeLimitBytes: 32 * MiB,
  pidsLimit: 64,
  nofileLimit: 64,
  maxOutputBytes: 64 * 1024,
  execTimeoutMs: 5_000,
  maxExecTimeoutMs: 10_000,
  replenishIntervalMs: 1_000,
  containerLifetimeMs: 120_000,
} satisfies ContainerPoolModuleOptions;

/**
 * What every hostile case ends with: the pool still serves a run, and the engine has no container of the pool
 * beyond the ones the pool itself holds (idle, leased, being created or being removed).
 */
export async function expectPoolHealthy(
  pool: ContainerPoolService,
  name: string,
  transport?: TransportName,
): Promise<void> {
  const r = await pool.run({ cmd: ['echo', 'still serving'] });
  expect(r).toMatchObject({ exitCode: 0, stdout: 'still serving\n', timedOut: false });
  // The transport the suite asked for is the one that ran (not auto's choice).
  if (transport) {
    expect(r.transport).toBe(transport);
    expect(pool.stats().transport).toBe(transport);
  }
  await expectOnlyPoolContainers(pool, name);
}

/** The engine lists no container of the pool that the pool does not know. */
export async function expectOnlyPoolContainers(
  pool: ContainerPoolService,
  name: string,
): Promise<void> {
  let strays: string[] = [];
  try {
    await eventually(
      async () => {
        const known = pool.containers();
        const ids = new Set(known.map((c) => c.id).filter(Boolean));
        const creating = new Set(known.filter((c) => c.state === 'creating').map((c) => c.name));
        const listed = await engineContainers(name);
        strays = listed
          .filter((c) => !ids.has(c.Id) && !creating.has(c.Names[0]?.replace(/^\//, '')))
          .map((c) => `${c.Names[0]} (${c.State})`);
        return strays.length === 0;
      },
      10_000,
      'only the pool own containers on the engine',
    );
  } catch {
    throw new Error(`containers of pool ${name} the pool does not hold: ${strays.join(', ')}`);
  }
}

/** Runs a Python program (as run({ code })) with a per-case timeout. */
export function py(
  pool: ContainerPoolService,
  code: string,
  opts: { timeoutMs?: number; stdin?: string; env?: Record<string, string> } = {},
): Promise<ExecResult> {
  return pool.run({ code, ...opts });
}

/** Runs a shell script with `sh -c` (dash in the sandbox image). */
export function sh(
  pool: ContainerPoolService,
  script: string,
  opts: { timeoutMs?: number; stdin?: string; env?: Record<string, string> } = {},
): Promise<ExecResult> {
  return pool.run({ cmd: ['sh', '-c', script], ...opts });
}

/** Parses the last line of stdout as JSON (the probes print one JSON report). */
export function report<T = Record<string, unknown>>(r: ExecResult): T {
  const lines = r.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]) as T;
  } catch {
    throw new Error(
      `no JSON report in stdout (exit ${r.exitCode}, timedOut ${r.timedOut}):\n${r.stdout}\nstderr:\n${r.stderr}`,
    );
  }
}

/** A cgroup v1 file of a container of the main engine (cgroupfs driver, parent /docker), or null. */
export function cgroupValue(controller: string, id: string, file: string): string | null {
  for (const path of [
    `/sys/fs/cgroup/${controller}/docker/${id}/${file}`,
    `/sys/fs/cgroup/${controller}/system.slice/docker-${id}.scope/${file}`,
    `/sys/fs/cgroup/system.slice/docker-${id}.scope/${file}`,
  ]) {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      // next layout
    }
  }
  return null;
}

/** The engine's view of a container's limits. */
export async function hostConfigOf(id: string) {
  return (await docker.getContainer(id).inspect()).HostConfig;
}

/**
 * One pool with HOSTILE_LIMITS on the given transport for a describe block: started (and filled) before its tests, checked after each
 * test (it still serves, it holds only its own containers), closed and checked for leaks after all.
 */
export function useHostilePool(transport: TransportName): {
  app?: INestApplication;
  pool: ContainerPoolService;
  name: string;
  transport: TransportName;
} {
  const ctx = { transport } as {
    app?: INestApplication;
    pool: ContainerPoolService;
    name: string;
    transport: TransportName;
  };
  beforeAll(async () => {
    Object.assign(
      ctx,
      await startPool({ ...HOSTILE_LIMITS, size: 2, maxContainers: 4, transport }),
    );
    await ctx.pool.initialize();
  });
  afterEach(async () => {
    await expectPoolHealthy(ctx.pool, ctx.name, transport);
  });
  afterAll(async () => {
    await ctx.app?.close();
    if (ctx.name) await expectNoContainersLeft(ctx.name);
  });
  return ctx;
}
