import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Dockerode from 'dockerode';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import { ContainerPoolModule } from '../../src/container-pool/container-pool.module';
import type { ContainerPoolModuleExtras } from '../../src/container-pool/container-pool.module-definition';
import { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { ContainerDriver } from '../../src/container-pool/engine/container-driver.interface';
import type { ContainerPoolModuleOptions } from '../../src/container-pool/interfaces/container-pool-options.interface';

/** The Python sandbox image the test scripts build (or POOL_IMAGE when set). */
export const SANDBOX_IMAGE = process.env.POOL_IMAGE || 'container-pool-sandbox:bookworm';
/**
 * The transports of the Python image: every hostile, fault and core integration case on it runs once on each,
 * named explicitly (the default, auto, would pick the runner there). Busybox has no Python: exec only.
 */
export const TRANSPORTS = ['exec', 'runner'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/** A tiny busybox image for fast shell-only tests. */
export const BUSYBOX_IMAGE = process.env.BUSYBOX_IMAGE || 'container-pool-busybox:latest';

/**
 * The offline data-science image (scripts/build-sandbox-image.sh datascience): python3 with numpy, pandas and
 * matplotlib from Debian, matplotlib's font cache built in at DATASCIENCE_MPL_CACHE_DIR.
 */
export const DATASCIENCE_IMAGE =
  process.env.DATASCIENCE_IMAGE || 'container-pool-datascience:bookworm';
/** Where that image keeps matplotlib's font cache (root-owned, read-only to the sandbox user). */
export const DATASCIENCE_MPL_CACHE_DIR = '/usr/local/share/matplotlib-cache';

/**
 * Python that sets SF to the interpreter's channel to the runner: its status socket, the one socket among its
 * descriptors (at the top of the descriptor range: nofileLimit - 1).
 */
export const CHANNEL_FD = `
import os as _os, stat as _stat
def _is_socket(fd):
    try:
        return _stat.S_ISSOCK(_os.fstat(fd).st_mode)
    except OSError:
        return False
SF = max(fd for fd in map(int, _os.listdir("/proc/self/fd")) if _is_socket(fd))
`;

/** Every container a test creates outside the pool carries this label (and is removed by the test). */
export const TEST_LABEL = 'io.container-pool.test';

export const docker = new Dockerode();

let seq = 0;
/**
 * A pool name unique to this test run, so that suites never see each other's containers. Every test pool name
 * starts with `test-` (global-teardown checks those for leaks).
 */
export function uniquePoolName(prefix = 'it'): string {
  return `test-${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
}

/** Containers of a pool as the engine lists them (any state). */
export async function engineContainers(pool: string, extra: Record<string, string> = {}) {
  const label = [
    `io.container-pool.pool=${pool}`,
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
  ];
  return docker.listContainers({ all: true, filters: { label } });
}

/** Waits until the engine lists no container of the pool. */
export async function expectNoContainersLeft(pool: string, withinMs = 5000): Promise<void> {
  const until = Date.now() + withinMs;
  for (;;) {
    const left = await engineContainers(pool);
    if (!left.length) return;
    if (Date.now() > until) {
      throw new Error(
        `containers of pool ${pool} left behind: ${left.map((c) => `${c.Names[0]} ${c.State}`).join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts a Nest app hosting a pool on the real engine, optionally through a driver of the test's making (a
 * DockerDriver subclass that injects delays or counts calls) in place of the module's own. Close it with
 * app.close().
 */
export async function startPool(
  options: ContainerPoolModuleOptions & ContainerPoolModuleExtras = {},
  driver?: ContainerDriver,
): Promise<{ app: INestApplication; pool: ContainerPoolService; name: string }> {
  const name = options.name ?? uniquePoolName();
  let builder = Test.createTestingModule({
    imports: [
      ContainerPoolModule.forRoot({
        image: SANDBOX_IMAGE,
        pullPolicy: 'never',
        size: 1,
        maxContainers: 4,
        ...options,
        name,
      }),
    ],
  });
  if (driver) builder = builder.overrideProvider(CONTAINER_DRIVER).useValue(driver);
  const app = (await builder.compile()).createNestApplication({ logger: ['error', 'warn'] });
  await app.init();
  return { app, pool: app.get(ContainerPoolService), name };
}

/**
 * A separate Node process hosting an instance of a pool (test/support/pool-host.ts, or another host `script` of
 * this folder that prints `READY <id>` the same way), once it is READY. `stdout` is what it printed until then.
 */
export function startPoolHost(
  env: Record<string, string>,
  hosts: ChildProcess[] = [],
  script = 'pool-host.ts',
): Promise<{ child: ChildProcess; instanceId: string; stdout: string }> {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', join(__dirname, script)],
    {
      env: {
        ...process.env,
        POOL_IMAGE: SANDBOX_IMAGE,
        POOL_SIZE: '3',
        POOL_PULL_POLICY: 'never',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  hosts.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`pool host not ready after 60 s: ${err}`)),
      60_000,
    );
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^READY (\S+)\n/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, instanceId: m[1], stdout: out.slice(0, m.index) });
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`pool host exited (${code ?? signal}) before READY: ${err}`));
    });
  });
}

/** Polls until `check` holds. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The transport a container of the main engine was made for, from the engine's view: exec containers run
 * docker-init (Init) with the lifeline, runner containers the runner as PID 1 without an init.
 */
export async function transportOf(id: string): Promise<'exec' | 'runner'> {
  const info = await docker.getContainer(id).inspect();
  return info.HostConfig.Init ? 'exec' : 'runner';
}
