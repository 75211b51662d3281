/*
 * The runnable service stops when told, whichever process of the `npm run serve` chain is told: SIGTERM to npm,
 * SIGINT to node itself, SIGTERM to a shell the script runs under. Each time: a log line names the signal (or
 * the gone parent), running executions finish, the port closes, the node process is gone, no container of its
 * pool is left, the exit status is 0, all within shutdownGraceMs + 5 s.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { engineContainers, SANDBOX_IMAGE, uniquePoolName } from '../support/integration';
import {
  descendants,
  freePort,
  isAlive,
  jsonLogs,
  launch,
  Launched,
  portOpen,
  waitUntil,
} from '../support/processes';

const ROOT = join(__dirname, '../..');
const GRACE_MS = 3_000;
const TOKEN = `serve-${randomBytes(16).toString('hex')}`;

interface Service {
  proc: Launched;
  node: number;
  port: number;
  name: string;
}

const started: Service[] = [];

/** Starts the service with `cmd args` in the repository and waits until it is ready (pool filled). */
async function startService(cmd: string, args: string[]): Promise<Service> {
  const port = await freePort();
  const name = uniquePoolName('serve');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('npm_')) delete env[k];
  const proc = launch(cmd, args, {
    cwd: ROOT,
    detached: true, // its own process group: a failed test can clean up the whole tree
    env: {
      ...env,
      POOL_IMAGE: SANDBOX_IMAGE,
      POOL_PULL_POLICY: 'never',
      POOL_NAME: name,
      POOL_SIZE: '1',
      POOL_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      POOL_ADMIN_TOKEN: TOKEN,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_FORMAT: 'json',
    },
  });
  const service: Service = { proc, node: 0, port, name };
  started.push(service);
  await waitUntil(
    async () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`${cmd} ${args.join(' ')} exited before ready:\n${proc.output()}`);
      }
      try {
        return (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200;
      } catch {
        return false;
      }
    },
    90_000,
    `the service on port ${port}`,
    200,
  );
  const node = descendants(proc.child.pid!).find((p) => /^node dist\/main\.js/.test(p.args));
  if (!node)
    throw new Error(
      `no node process under ${cmd}: ${JSON.stringify(descendants(proc.child.pid!))}`,
    );
  service.node = node.pid;
  return service;
}

/** Waits for the service to be fully gone after a signal sent at `signalledAt`. */
async function expectStopped(s: Service, signalledAt: number): Promise<void> {
  await waitUntil(() => !isAlive(s.node), GRACE_MS + 5_000, `node ${s.node} to exit`);
  expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS + 5_000);
  expect(await portOpen(s.port)).toBe(false);
  expect(await engineContainers(s.name)).toEqual([]);
  const logs = jsonLogs(s.proc.output());
  expect(logs.map((l) => l.message)).toContainEqual(expect.stringMatching(/^stopped in \d+ ms$/));
  expect(logs.filter((l) => l.level === 'error')).toEqual([]);
}

function execute(port: number, code: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}/admin/pool/executions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
  });
}

afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.proc.child.exitCode === null && s.proc.child.signalCode === null) {
      try {
        process.kill(-s.proc.child.pid!, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    if (s.node && isAlive(s.node)) process.kill(s.node, 'SIGTERM');
    await waitUntil(() => !s.node || !isAlive(s.node), 15_000, `node ${s.node} to exit`).catch(
      () => s.node && process.kill(s.node, 'SIGKILL'),
    );
  }
});

describe('npm run serve stops when told', () => {
  jest.setTimeout(150_000);

  it('SIGTERM to npm: the running execution finishes, then the service stops with 0 containers and npm exits 0', async () => {
    const s = await startService('npm', ['run', 'serve']);
    // npm's own child is the service (npm run serve -> exec bash scripts/serve.sh -> exec node).
    expect(descendants(s.proc.child.pid!)[0]).toMatchObject({ pid: s.node });
    expect(await engineContainers(s.name)).toHaveLength(1);

    const running = execute(s.port, 'import time\ntime.sleep(1.5)\nprint(6 * 7)');
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    process.kill(s.proc.child.pid!, 'SIGTERM');

    const res = await running;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { stdout: string }).stdout).toBe('42\n');
    await expectStopped(s, t0);
    expect(await s.proc.exited).toEqual({ code: 0, signal: null });
    expect(jsonLogs(s.proc.output()).map((l) => l.message)).toContainEqual(
      `received SIGTERM: shutting down gracefully (running executions get up to ${GRACE_MS} ms)`,
    );
  });

  it('SIGTERM while an HTTP execution outlasts the grace: it is stopped at the grace (503), the service exits 0 within grace + 5 s', async () => {
    const s = await startService('npm', ['run', 'serve']);
    // fetch keeps its connection alive after the answer: the shutdown must not wait for it either.
    const running = execute(s.port, 'import time\ntime.sleep(60)\nprint(1)');
    await waitUntil(
      async () => {
        const stats = await fetch(`http://127.0.0.1:${s.port}/admin/pool`, {
          headers: { Authorization: `Bearer ${TOKEN}` },
        });
        return ((await stats.json()) as { leased: number }).leased === 1;
      },
      10_000,
      'the execution to start',
    );
    await new Promise((r) => setTimeout(r, 300)); // python is running its sleep
    const t0 = Date.now();
    process.kill(s.node, 'SIGTERM');

    const res = await running;
    const answeredAfter = Date.now() - t0;
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('POOL_SHUTTING_DOWN');
    expect(answeredAfter).toBeGreaterThanOrEqual(GRACE_MS - 200);
    expect(answeredAfter).toBeLessThan(GRACE_MS + 3_000);
    await expectStopped(s, t0);
    expect(await s.proc.exited).toEqual({ code: 0, signal: null });
  });

  it('SIGINT to node: the service stops, npm exits 0', async () => {
    const s = await startService('npm', ['run', 'serve']);
    const t0 = Date.now();
    process.kill(s.node, 'SIGINT');
    await expectStopped(s, t0);
    expect(await s.proc.exited).toEqual({ code: 0, signal: null });
    expect(jsonLogs(s.proc.output()).map((l) => l.message)).toContainEqual(
      expect.stringMatching(/^received SIGINT: shutting down gracefully/),
    );
  });

  it('SIGTERM to a shell running the script (which dies without passing it on): the service sees its parent gone and stops', async () => {
    // What `npm run serve` ran before (sh -c 'bash scripts/serve.sh'): dash does not exec the last command, so
    // the shell stays between the runner and node, and dies of the signal.
    const s = await startService('sh', ['-c', 'bash scripts/serve.sh']);
    const shell = s.proc.child.pid!;
    expect(descendants(shell)[0]).toMatchObject({ pid: s.node });
    const t0 = Date.now();
    process.kill(shell, 'SIGTERM');
    expect(await s.proc.exited).toEqual({ code: null, signal: 'SIGTERM' });
    await expectStopped(s, t0);
    expect(jsonLogs(s.proc.output()).map((l) => l.message)).toContainEqual(
      `parent process ${shell} is gone: shutting down gracefully (running executions get up to ${GRACE_MS} ms)`,
    );
  });
});
