/*
 * The runnable service stops when told, whichever process of the `npm run serve` chain is told: SIGTERM to npm,
 * SIGINT to node itself, SIGTERM to a shell the script runs under. Each time: a log line names the signal (or
 * the gone parent), running executions finish (within shutdownGraceMs: one that outlasts it is stopped and
 * answered), the port closes, the node process is gone, no container of its pool is left, the exit status is 0,
 * all within shutdownGraceMs + 5 s. And at every stage before that: a signal during the setup (a docker pull
 * that hangs, through a `docker` on PATH that sleeps) stops the step and every process of it at once; a parent
 * gone before node started stops node at its start; a signal while node loads Nest stops it cleanly.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** The service's environment: no npm_* of the runner, a pool of its own, a short grace, JSON logs. */
function serviceEnv(name: string, port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('npm_') || k.startsWith('CONTAINER_POOL_')) delete env[k];
  }
  return {
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
    ...extra,
  };
}

/** Pids of the live processes whose environment holds `NAME=value` (those of one test's service). */
function processesWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}\0`;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/environ`, 'latin1').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter(isAlive);
}

/** A directory with a `docker` that passes everything to the real one but `pull`, which hangs (sleep 300). */
function hangingPullDocker(): { dir: string; pullPid: () => number | undefined } {
  const dir = mkdtempSync(join(tmpdir(), 'container-pool-serve-shim-'));
  const real = execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim();
  writeFileSync(
    join(dir, 'docker'),
    `#!/bin/sh\nif [ "$1" = pull ]; then echo $$ > "${dir}/pull.pid"; sleep 300; exit 1; fi\nexec ${real} "$@"\n`,
  );
  chmodSync(join(dir, 'docker'), 0o755);
  return {
    dir,
    pullPid: () => {
      try {
        return Number(readFileSync(join(dir, 'pull.pid'), 'utf8').trim());
      } catch {
        return undefined;
      }
    },
  };
}

/** Starts the service with `cmd args` in the repository and waits until it is ready (pool filled). */
async function startService(cmd: string, args: string[]): Promise<Service> {
  const port = await freePort();
  const name = uniquePoolName('serve');
  const proc = launch(cmd, args, {
    cwd: ROOT,
    detached: true, // its own process group: a failed test can clean up the whole tree
    env: serviceEnv(name, port),
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
    // Ready means it can serve (room to create); the warm containers (one of the default profile, one of the
    // datascience profile the service has when POOL_PROFILES is unset) follow the runner probe of the images.
    await waitUntil(
      async () => (await engineContainers(s.name)).length === 2,
      60_000,
      'the warm containers',
    );
    expect(await engineContainers(s.name)).toHaveLength(2);

    const running = execute(s.port, 'import time\ntime.sleep(1.5)\nprint(6 * 7)');
    // SIGTERM once the execution runs (a fixed wait lost the race on a loaded machine: the request was still
    // queued, and a queued one is refused at shutdown, 503).
    await waitUntil(
      async () => {
        const stats = await fetch(`http://127.0.0.1:${s.port}/admin/pool`, {
          headers: { Authorization: `Bearer ${TOKEN}` },
        });
        return ((await stats.json()) as { leased: number }).leased >= 1;
      },
      10_000,
      'the execution to start',
    );
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

  it('the service has a datascience profile: a session on it plots over HTTP (a PNG of figsize x dpi, base64), then SIGTERM removes every container', async () => {
    const s = await startService('npm', ['run', 'serve']);
    const auth = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
    const base = `http://127.0.0.1:${s.port}/admin/pool`;
    const profiles = (await (await fetch(`${base}/profiles`, { headers: auth })).json()) as {
      name: string;
    }[];
    expect(profiles.map((p) => p.name).sort()).toEqual(['datascience', s.name].sort());
    const opened = await fetch(`${base}/sessions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ profile: 'datascience' }),
    });
    expect(opened.status).toBe(201);
    const { id } = (await opened.json()) as { id: string };
    const res = await fetch(`${base}/sessions/${id}/executions`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        code:
          'import sys\nimport matplotlib.pyplot as plt\nplt.figure(figsize=(3, 2), dpi=100)\n' +
          'plt.plot([1, 3, 2])\nplt.show()\n"numpy" in sys.modules',
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      exitCode: number;
      stderr: string;
      outputs: { type: string; data: Record<string, string> }[];
    };
    expect(body).toMatchObject({ exitCode: 0, stderr: '' });
    expect(body.outputs.map((o) => o.type)).toEqual(['display', 'result']);
    const png = Buffer.from(body.outputs[0].data['image/png'], 'base64');
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([300, 200]);
    expect(body.outputs[1].data['text/plain']).toBe('True'); // pre-imported before the hand-out
    const t0 = Date.now();
    process.kill(s.proc.child.pid!, 'SIGTERM');
    await expectStopped(s, t0);
    expect(await s.proc.exited).toEqual({ code: 0, signal: null });
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
  it.each([
    ['SIGTERM', 'npm', 143],
    ['SIGINT', 'the script', 130],
  ] as const)(
    '%s to %s during the setup (a docker pull that hangs): the step and its processes stop at once, nothing starts',
    async (signal, whom, code) => {
      const shim = hangingPullDocker();
      const name = uniquePoolName('serve-setup');
      const proc = launch('npm', ['run', 'serve'], {
        cwd: ROOT,
        detached: true,
        env: serviceEnv(name, await freePort(), {
          PATH: `${shim.dir}:${process.env.PATH}`,
          POOL_IMAGE: `container-pool-test-missing-${randomBytes(4).toString('hex')}:never`,
        }),
      });
      try {
        await waitUntil(
          () => {
            if (proc.child.exitCode !== null) throw new Error(`exited:\n${proc.output()}`);
            return shim.pullPid() !== undefined;
          },
          60_000,
          'the setup to reach docker pull',
        );
        const pull = shim.pullPid()!;
        const sleeper = descendants(pull).find((p) => /^sleep 300/.test(p.args));
        expect(sleeper).toBeDefined();
        const script = descendants(proc.child.pid!).find((p) =>
          /bash scripts\/serve\.sh/.test(p.args),
        );
        expect(script).toBeDefined();
        const t0 = Date.now();
        process.kill(whom === 'npm' ? proc.child.pid! : script!.pid, signal);
        const exited = await proc.exited;
        expect(Date.now() - t0).toBeLessThan(3_000);
        // npm passes on the script's status; the script exits with 128 + the signal's number.
        expect(exited.code === code || exited.signal === signal).toBe(true);
        expect(proc.output()).toContain(`received ${signal} during the setup: stopping it`);
        expect(proc.output()).not.toMatch(/starting the service/);
        for (const pid of [pull, sleeper!.pid, script!.pid]) expect(isAlive(pid)).toBe(false);
        expect(processesWithEnv('POOL_NAME', name)).toEqual([]);
        expect(await engineContainers(name)).toEqual([]);
      } finally {
        try {
          process.kill(-proc.child.pid!, 'SIGKILL');
        } catch {
          // gone already
        }
        for (const pid of processesWithEnv('POOL_NAME', name)) process.kill(pid, 'SIGKILL');
        rmSync(shim.dir, { recursive: true, force: true });
      }
    },
  );

  it('the process that started the script is gone before node starts: the service stops at its start, nothing left', async () => {
    // A shell that starts the script in the background and exits at once, as a careless wrapper would: node
    // starts re-parented (to init). Watching "the parent it has now" would watch init, forever.
    const name = uniquePoolName('serve-orphan');
    const proc = launch('sh', ['-c', 'bash scripts/serve.sh & sleep 1; exit 0'], {
      cwd: ROOT,
      detached: true,
      env: serviceEnv(name, await freePort()),
    });
    try {
      // The shell's stdout is the script's and node's: it ends when the last of them is gone.
      const ended = await Promise.race([
        new Promise<boolean>((resolve) => proc.child.stdout!.once('end', () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(resolve, 90_000, false)),
      ]);
      expect(ended).toBe(true);
      const logs = jsonLogs(proc.output());
      expect(logs.map((l) => l.message)).toContainEqual(
        expect.stringMatching(/^parent process \d+ is gone: shutting down gracefully$/),
      );
      expect(logs.map((l) => l.message)).toContainEqual(expect.stringMatching(/^stopped in 0 ms/));
      // It stopped before creating the app: no Nest module was initialised, no container made.
      expect(logs.filter((l) => l.context === 'InstanceLoader')).toEqual([]);
      expect(processesWithEnv('POOL_NAME', name)).toEqual([]);
      expect(await engineContainers(name)).toEqual([]);
    } finally {
      for (const pid of processesWithEnv('POOL_NAME', name)) process.kill(pid, 'SIGKILL');
    }
  });

  it('SIGTERM to node while it loads Nest (sent by a preload as @nestjs/core is required): it stops cleanly, exit 0', async () => {
    // Deterministic: the signal comes exactly while the module graph loads, before anything of the service
    // listens. Without a listener from the entry point's first line, node would die of it (128 + 15).
    const dir = mkdtempSync(join(tmpdir(), 'container-pool-serve-preload-'));
    const preload = join(dir, 'signal-while-loading.js');
    writeFileSync(
      preload,
      [
        "const Module = require('node:module');",
        'const load = Module._load;',
        'let sent = false;',
        'Module._load = function (request, ...rest) {',
        "  if (!sent && request === '@nestjs/core') {",
        '    sent = true;',
        "    process.stderr.write('preload: SIGTERM while loading @nestjs/core\\n');",
        "    process.kill(process.pid, 'SIGTERM');",
        '  }',
        '  return load.call(this, request, ...rest);',
        '};',
      ].join('\n'),
    );
    const name = uniquePoolName('serve-boot');
    const proc = launch('npm', ['run', 'serve'], {
      cwd: ROOT,
      detached: true,
      env: serviceEnv(name, await freePort(), { NODE_OPTIONS: `--require ${preload}` }),
    });
    try {
      const exited = await Promise.race([
        proc.exited,
        new Promise<'timeout'>((r) => setTimeout(r, 90_000, 'timeout')),
      ]);
      expect(proc.output()).toContain('preload: SIGTERM while loading @nestjs/core');
      expect(exited).toEqual({ code: 0, signal: null });
      const logs = jsonLogs(proc.output());
      expect(logs.map((l) => l.message)).toContainEqual(
        expect.stringMatching(/^received SIGTERM( while loading)?: shutting down gracefully/),
      );
      expect(logs.map((l) => l.message)).toContainEqual(
        expect.stringMatching(/^stopped in \d+ ms/),
      );
      expect(logs.filter((l) => l.level === 'error')).toEqual([]);
      expect(processesWithEnv('POOL_NAME', name)).toEqual([]);
      expect(await engineContainers(name)).toEqual([]);
    } finally {
      for (const pid of processesWithEnv('POOL_NAME', name)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
