/*
 * Child processes for the tests that run the service or consumer apps as real processes: free ports, process
 * trees, liveness, and commands whose output is collected.
 */
import { ChildProcess, execFileSync, spawn, SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A process that exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The parent pid of a live process. */
export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every descendant of pid with its command line, children before grandchildren. */
export function descendants(pid: number): { pid: number; ppid: number; args: string }[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] }));
  const out: typeof rows = [];
  let frontier = [pid];
  while (frontier.length) {
    const next = rows.filter((r) => frontier.includes(r.ppid));
    out.push(...next);
    frontier = next.map((r) => r.pid);
  }
  return out;
}

/** Polls until check() holds; throws naming `what` after timeoutMs. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A spawned process with its output collected and its end awaitable. */
export interface Launched {
  child: ChildProcess;
  /** stdout and stderr, interleaved as they came. */
  output(): string;
  /** Resolves when it exits (code, signal). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function launch(cmd: string, args: string[], options: SpawnOptions = {}): Launched {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/** Runs a command to its end; rejects with its output when it fails. */
export async function run(
  cmd: string,
  args: string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<string> {
  const p = launch(cmd, args, options);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
  const { code, signal } = await p.exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${String(options.cwd ?? '.')}) failed (${code ?? signal}):\n${p.output().slice(-6000)}`,
    );
  }
  return p.output();
}

/** The JSON log records (one object a line) in a service's output. */
export function jsonLogs(output: string): { level: string; message: string; context?: string }[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { level: string; message: string; context?: string }];
      } catch {
        return [];
      }
    });
}
