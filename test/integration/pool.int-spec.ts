import type { ChildProcess } from 'node:child_process';
import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import { InvalidRequestError } from '../../src/container-pool/errors/container-pool.errors';
import {
  engineContainers,
  eventually,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  startPool,
  startPoolHost,
  transportOf,
  TRANSPORTS,
  uniquePoolName,
} from '../support/integration';

/** The core promises of the pool, checked on the real engine with the Python sandbox image. */
describe.each(TRANSPORTS)('ContainerPoolService on a real engine (transport %s)', (transport) => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      size: 2,
      maxContainers: 4,
      memoryBytes: 128 * 1024 * 1024,
      tmpSizeBytes: 32 * 1024 * 1024,
      workdirSizeBytes: 32 * 1024 * 1024,
      shmSizeBytes: 8 * 1024 * 1024,
      execTimeoutMs: 20_000,
      transport,
    }));
    await pool.initialize();
    expect(pool.stats().transport).toBe(transport);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('fills to size on init, as the engine lists by label', async () => {
    await eventually(
      async () => (await engineContainers(name)).length >= 2,
      20_000,
      'two containers',
    );
    const listed = await engineContainers(name, { 'io.container-pool.owner': pool.instanceId });
    expect(listed.filter((c) => c.State === 'running').length).toBeGreaterThanOrEqual(2);
    expect(listed[0].Labels).toMatchObject({
      'io.container-pool.managed-by': 'container-pool',
      'io.container-pool.pool': name,
    });
    expect(pool.stats().idle).toBe(2);
  });

  it('runs Python code with stdin and returns stdout, stderr and the exit code', async () => {
    const r = await pool.run({
      code: 'import sys\ndata = sys.stdin.read()\nprint(data.upper())\nprint("warn", file=sys.stderr)\nsys.exit(3)',
      stdin: 'hello sandbox',
    });
    expect(r).toMatchObject({
      exitCode: 3,
      stdout: 'HELLO SANDBOX\n',
      stderr: 'warn\n',
      timedOut: false,
      oomKilled: false,
      truncated: false,
    });
    expect(r.stdoutBytes.equals(Buffer.from('HELLO SANDBOX\n'))).toBe(true);
    expect(r.executionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.containerId).toMatch(/^[0-9a-f]{64}$/);
    expect(r.durationMs).toBeGreaterThan(0);
  });

  it('runs argv without a shell, with the caller env and nothing else of the service', async () => {
    process.env.CONTAINER_POOL_SECRET_FOR_TEST = 'leak-me-not';
    const r = await pool.run({ cmd: ['sh', '-c', 'env; pwd'], env: { GREETING: 'hi there' } });
    delete process.env.CONTAINER_POOL_SECRET_FOR_TEST;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('GREETING=hi there');
    expect(r.stdout).toContain('HOME=/workspace');
    expect(r.stdout).toContain('/workspace\n');
    expect(r.stdout).not.toContain('leak-me-not');
  });

  it('runs code of more than 1 MiB and still gives the program its stdin', async () => {
    const filler = '# ' + 'x'.repeat(1000) + '\n';
    const code = filler.repeat(1100) + 'import sys\nprint(len(sys.stdin.read()), __name__)\n';
    expect(Buffer.byteLength(code)).toBeGreaterThan(1024 * 1024);
    const r = await pool.run({ code, stdin: 'abcdef' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('6 __main__\n');
  });

  it('runs as a non-root user', async () => {
    const r = await pool.run({ code: 'import os; print(os.getuid(), os.getgid())' });
    expect(r.stdout.trim()).toBe('65534 65534');
  });

  it('an exec the engine cannot start is an InvalidRequestError naming cmd[0] or workdir', async () => {
    // The reason is each transport's own words: exec quotes the engine (runc), the runner the errno of its
    // exec or chdir (docs/runner-protocol.md, ERROR).
    const notFound =
      transport === 'exec' ? /executable file not found/ : /No such file or directory/;
    const cases: [Parameters<ContainerPoolService['run']>[0], string, RegExp][] = [
      [{ cmd: ['nosuch-program'] }, 'cmd[0]', notFound],
      [{ cmd: ['/etc/passwd'] }, 'cmd[0]', /permission denied/i],
      [{ cmd: ['true'], workdir: '/nonexistent' }, 'workdir', /no such file or directory/i],
      [{ cmd: ['true'], workdir: '/etc/passwd' }, 'workdir', /not a directory/i],
    ];
    for (const [request, field, reason] of cases) {
      const err = (await pool.run(request).catch((e: unknown) => e)) as InvalidRequestError;
      expect(err).toBeInstanceOf(InvalidRequestError);
      expect(err.field).toBe(field);
      expect(err.message).toMatch(reason);
    }
    // A program that prints the engine's text and exits 126, and a shell's own 127, are the program's results.
    const forged = await pool.run({
      cmd: [
        'sh',
        '-c',
        'echo "OCI runtime exec failed: exec failed: unable to start container process: x: unknown"; exit 126',
      ],
    });
    expect(forged).toMatchObject({
      exitCode: 126,
      stdout: expect.stringMatching(/^OCI runtime exec failed/),
    });
    const shell = await pool.run({ cmd: ['sh', '-c', 'nosuch-program'] });
    expect(shell).toMatchObject({ exitCode: 127, stderr: expect.stringMatching(/not found/) });
  });

  it('keeps the work dir 0700, owned by the sandbox user', async () => {
    const r = await pool.run({ cmd: ['sh', '-c', 'stat -c "%a %u:%g" .; pwd'] });
    expect(r.stdout).toBe('700 65534:65534\n/workspace\n');
  });

  it('has no network: a connect fails', async () => {
    const r = await pool.run({
      code: [
        'import socket',
        'try:',
        '    socket.create_connection(("1.1.1.1", 80), timeout=2)',
        '    print("connected")',
        'except OSError as e:',
        '    print("failed", e.errno)',
      ].join('\n'),
    });
    expect(r.stdout).toMatch(/^failed/);
  });

  it('reports a memory bomb as OOM-killed', async () => {
    const r = await pool.run({
      code: 'chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))',
      timeoutMs: 15_000,
    });
    expect(r.oomKilled).toBe(true);
    expect(r.exitCode).toBe(137);
    expect(r.timedOut).toBe(false);
  });

  it('kills a timed-out execution and reports what it printed', async () => {
    const t0 = Date.now();
    const r = await pool.run({
      code: 'import time\nprint("started", flush=True)\nwhile True: time.sleep(0.1)',
      timeoutMs: 1500,
    });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.stdout).toBe('started\n');
    expect(Date.now() - t0).toBeLessThan(1500 + 1000 + 1000);
    // The container that ran it is gone (single use, killed).
    await eventually(
      async () => !(await engineContainers(name)).some((c) => c.Id === r.containerId),
      5000,
      'the timed-out container to be removed',
    );
  });

  it('caps output and marks it truncated, still delivering the exit code', async () => {
    const r = await pool.run({
      cmd: ['sh', '-c', 'head -c 3000000 /dev/zero; echo done >&2; exit 7'],
      maxOutputBytes: 100_000,
    });
    expect(r.stdoutBytes.length).toBe(100_000);
    expect(r.truncated).toBe(true);
    expect(r.stderr).toBe('done\n');
    expect(r.exitCode).toBe(7);
  });

  it('withContainer() hands a leased container and releases it afterwards', async () => {
    const out = await pool.withContainer(async (c) => {
      expect(pool.stats().leased).toBeGreaterThanOrEqual(1);
      expect(c.expiry.getTime()).toBeGreaterThan(Date.now());
      const info = await c.dockerContainer.inspect();
      expect(info.HostConfig.NetworkMode).toBe('none');
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.CapDrop).toEqual(['ALL']);
      expect(info.HostConfig.Privileged).toBe(false);
      // exec: the main process (the lifeline) is root without capabilities; runner: the main process is the runner,
      // as the sandbox user. Every execution runs as the sandbox user.
      expect(info.Config.User).toBe(transport === 'exec' ? '0:0' : '65534:65534');
      expect(info.HostConfig.CapAdd ?? []).toEqual([]);
      expect((await c.execute(['id', '-u'])).stdout).toBe('65534\n');
      return (await c.execute(['echo', 'inside'])).stdout;
    });
    expect(out).toBe('inside\n');
    await eventually(() => pool.stats().leased === 0, 2000, 'release');
  });

  it('shutdown removes every container of the pool', async () => {
    const local = await startPool({ size: 2, image: SANDBOX_IMAGE, transport });
    await local.pool.initialize();
    expect((await engineContainers(local.name)).length).toBe(2);
    const c = await local.pool.acquire();
    expect(c.id).toBeTruthy();
    await local.app.close();
    expect(await engineContainers(local.name)).toEqual([]);
  });
});

describe.each(TRANSPORTS)('a SIGKILLed instance (transport %s)', (transport) => {
  const hosts: ChildProcess[] = [];
  afterAll(() => {
    for (const h of hosts) if (h.exitCode === null) h.kill('SIGKILL');
  });

  const startHost = (pool: string) =>
    startPoolHost({ POOL_NAME: pool, POOL_TRANSPORT: transport }, hosts);

  it('leaves no container behind once the next instance has started', async () => {
    const pool = uniquePoolName('sigkill');
    const first = await startHost(pool);
    const before = await engineContainers(pool, { 'io.container-pool.owner': first.instanceId });
    expect(before.length).toBe(3);
    for (const c of before) expect(await transportOf(c.Id)).toBe(transport);
    first.child.kill('SIGKILL');
    const second = await startHost(pool);
    const leftovers = await engineContainers(pool, { 'io.container-pool.owner': first.instanceId });
    expect(leftovers).toEqual([]);
    expect(
      (await engineContainers(pool)).every(
        (c) => c.Labels['io.container-pool.owner'] === second.instanceId,
      ),
    ).toBe(true);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    await expectNoContainersLeft(pool, 3000);
  });
});
