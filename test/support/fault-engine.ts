import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';

/**
 * The project's own second Docker engine for engine-level faults (scripts/fault-engine.sh): tests may stop and
 * restart it freely, because nobody else uses it. The shared main engine is never stopped.
 */
const SCRIPT = join(__dirname, '../../scripts/fault-engine.sh');
export const FAULT_SOCKET = '/run/container-pool-fault/docker.sock';
export const FAULT_IMAGE =
  process.env.CONTAINER_POOL_FAULT_IMAGE || 'container-pool-busybox:latest';

function onPath(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the fault engine cannot run here, or null. Decided when the test file loads (so that only the cases
 * needing it are skipped); the script's own checks are the same.
 */
export const faultEngineUnavailable: string | null = (() => {
  if (process.env.CONTAINER_POOL_SKIP_FAULT_ENGINE)
    return 'CONTAINER_POOL_SKIP_FAULT_ENGINE is set';
  if (process.platform !== 'linux')
    return `the fault engine needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root: a second, project-owned dockerd needs root';
  for (const bin of ['dockerd', 'docker', 'containerd']) {
    if (!onPath(bin)) return `no ${bin} binary on PATH`;
  }
  return null;
})();

if (faultEngineUnavailable && process.env.CONTAINER_POOL_REQUIRE_FAULT_ENGINE) {
  throw new Error(
    `CONTAINER_POOL_REQUIRE_FAULT_ENGINE is set but the fault engine cannot run: ${faultEngineUnavailable}`,
  );
}

/**
 * `it` for a case that stops or restarts an engine: runs where the project's fault engine can run, else is
 * skipped with the reason printed.
 */
export function itWithFaultEngine(name: string, fn: () => Promise<void>, timeoutMs?: number): void {
  if (faultEngineUnavailable) {
    it.skip(`${name} [needs the fault engine: ${faultEngineUnavailable}]`, () => undefined);

    console.warn(`SKIPPED "${name}": ${faultEngineUnavailable}`);
    return;
  }
  it(name, fn, timeoutMs);
}

function run(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [SCRIPT, command],
      {
        env: { ...process.env, CONTAINER_POOL_FAULT_LEASE_PID: String(process.pid) },
        timeout: 180_000,
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException & { code?: number | string }).code;
          const e = new Error(
            `scripts/fault-engine.sh ${command} failed (exit ${code}):\n${stderr}`,
          );
          (e as Error & { exitCode?: unknown }).exitCode = code;
          return reject(e);
        }
        resolve(stdout);
      },
    );
  });
}

const ROOTS = ['/run/container-pool-fault', '/var/lib/container-pool-fault'];

/** Processes, mounts and cgroups of the fault engine still present on this machine. */
export function faultEngineLeftovers(): string[] {
  const left: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (ROOTS.some((r) => cmd.includes(r)) || cmd.includes('-namespace container-pool-fault')) {
        left.push(`process ${pid}: ${cmd.trim().slice(0, 120)}`);
      }
    } catch {
      // exited meanwhile
    }
  }
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const target = line.split(' ')[1] ?? '';
    if (ROOTS.some((r) => target.startsWith(r))) left.push(`mount ${target}`);
  }
  for (const controller of ['memory', 'pids', 'cpu']) {
    try {
      readdirSync(`/sys/fs/cgroup/${controller}/container-pool-fault`);
      left.push(`cgroup /sys/fs/cgroup/${controller}/container-pool-fault`);
    } catch {
      // none: as it should be
    }
  }
  return left;
}

/** The pid of the fault dockerd, from the pid file its script gave it. */
function faultDaemonPid(): number {
  const pid = Number(readFileSync('/run/container-pool-fault/dockerd.pid', 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error('no pid of the fault dockerd');
  return pid;
}

/** A dockerode client of the fault engine. */
export const faultDocker = new Dockerode({ socketPath: FAULT_SOCKET });

export const faultEngine = {
  /**
   * Starts it (waiting up to 3 min while another test run holds it) and makes sure the busybox image is there.
   */
  async start(): Promise<void> {
    const until = Date.now() + 180_000;
    for (;;) {
      try {
        await run('start');
        return;
      } catch (err) {
        if ((err as { exitCode?: unknown }).exitCode !== 4 || Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  },
  /** Stops the daemon but keeps this run's lease (start() brings it back). */
  async down(): Promise<void> {
    await run('down');
  },
  async restart(): Promise<void> {
    await run('restart');
  },
  /** Stops it, checks that nothing of it is left (process, mount, cgroup), releases the lease. */
  async stop(): Promise<void> {
    await run('stop');
    const left = faultEngineLeftovers();
    if (left.length) throw new Error(`the fault engine left things behind: ${left.join('; ')}`);
  },
  /** SIGSTOPs the fault dockerd: it keeps its sockets open but answers nothing (a hung engine). */
  freeze(): void {
    process.kill(faultDaemonPid(), 'SIGSTOP');
  },
  thaw(): void {
    process.kill(faultDaemonPid(), 'SIGCONT');
  },
  async isUp(): Promise<boolean> {
    try {
      await faultDocker.ping();
      return true;
    } catch {
      return false;
    }
  },
};

/** Containers of a pool on the fault engine. */
export async function faultEngineContainers(pool: string) {
  return faultDocker.listContainers({
    all: true,
    filters: { label: [`io.container-pool.pool=${pool}`] },
  });
}
