import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import {
  DirectChannelOffer,
  type DirectChannels,
} from '../../src/container-pool/engine/docker/docker-direct-channel';
import type { DockerDriver } from '../../src/container-pool/engine/docker/docker.driver';
import { docker, expectNoContainersLeft, startPool } from '../support/integration';

/** What a job sees of the direct channel from inside its container (JSON on stdout). */
const PROBE = `
import json, os, socket
out = {'env': [k for k in os.environ if 'CHANNEL' in k]}
try:
    out['dir'] = os.listdir('/run/container-pool')
except OSError as e:
    out['dir'] = type(e).__name__
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect('/run/container-pool/channel.sock')
    out['connect'] = 'connected'
except OSError as e:
    out['connect'] = type(e).__name__
try:
    open('/run/container-pool/x', 'w')
    out['write'] = 'written'
except OSError as e:
    out['write'] = type(e).__name__
try:
    out['fd1'] = sorted(os.listdir('/proc/1/fd'))
except OSError as e:
    out['fd1'] = type(e).__name__
print(json.dumps(out))
`;

async function mountsOf(id: string) {
  const info = await docker.getContainer(id).inspect();
  return {
    mounts: info.Mounts.map((m) => ({ source: m.Source, target: m.Destination, rw: m.RW })),
    env: info.Config.Env.filter((e) => e.startsWith('CONTAINER_POOL_CHANNEL=')),
  };
}

/** Runner containers talk to the host over a per-container Unix socket, not the engine's attach stream. */
describe('direct runner channel on a real engine', () => {
  const apps: INestApplication[] = [];
  const names: string[] = [];

  async function open(options: Parameters<typeof startPool>[0]) {
    const started = await startPool({ transport: 'runner', size: 1, maxContainers: 3, ...options });
    apps.push(started.app);
    names.push(started.name);
    await started.pool.initialize();
    const driver = started.app.get<DockerDriver>(CONTAINER_DRIVER);
    return { ...started, driver };
  }

  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const name of names) await expectNoContainersLeft(name);
  });

  it('is taken by the runner; nothing in the container can reach it, and its host directory is gone', async () => {
    const { pool, driver } = await open({});
    const r = await pool.run({ code: PROBE });
    expect(r).toMatchObject({ exitCode: 0, transport: 'runner' });
    expect(JSON.parse(r.stdout)).toEqual({
      env: [],
      dir: [],
      connect: 'FileNotFoundError',
      write: 'FileNotFoundError',
      fd1: 'PermissionError',
    });
    expect(driver.directChannels.disabledBecause).toBeNull();
    const { mounts, env } = await mountsOf(r.containerId);
    expect(mounts).toEqual([
      {
        source: expect.stringContaining('container-pool-ch-'),
        target: '/run/container-pool',
        rw: false,
      },
    ]);
    expect(env).toEqual(['CONTAINER_POOL_CHANNEL=/run/container-pool/channel.sock']);
    // The directory went at the connection; the socket with it.
    expect(existsSync(mounts[0].source)).toBe(false);
    // A session's cells and commands go over it too.
    const s = await pool.openSession();
    try {
      expect((await s.runCode('x = 41')).exitCode).toBe(0);
      const c = await s.runCode('x += 1; print(x)');
      expect(c).toMatchObject({ exitCode: 0, stdout: '42\n', stateLost: false });
      const sh = await s.run({
        cmd: ['sh', '-c', 'ls -a /run/container-pool; env | grep -c CHANNEL'],
      });
      // The directory is a removed one: it lists nothing, not even . and ..
      expect(sh.stdout).toBe('0\n');
    } finally {
      await s.close();
    }
  });

  it('carries large output and stdin both ways (backpressure through the socket)', async () => {
    const { pool } = await open({
      maxOutputBytes: 8 * 1024 * 1024,
      maxStdinBytes: 4 * 1024 * 1024,
    });
    const stdin = Buffer.alloc(3 * 1024 * 1024, 'a');
    const r = await pool.run({
      code: 'import sys\nd = sys.stdin.buffer.read()\nsys.stdout.buffer.write(d * 2)\n',
      stdin,
      maxOutputBytes: 8 * 1024 * 1024,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdoutTotalBytes).toBe(6 * 1024 * 1024);
    expect(r.stdoutBytes.equals(Buffer.alloc(6 * 1024 * 1024, 'a'))).toBe(true);
  });

  it('directChannel false: no mount, no variable, the attach stream', async () => {
    const { pool, driver } = await open({ directChannel: false });
    const r = await pool.run({ code: PROBE });
    expect(r).toMatchObject({ exitCode: 0, transport: 'runner' });
    expect(JSON.parse(r.stdout)).toMatchObject({ env: [], dir: 'FileNotFoundError' });
    expect(await mountsOf(r.containerId)).toEqual({ mounts: [], env: [] });
    expect(driver.directChannels.disabledBecause).toBe('directChannel is false');
  });

  it('a runner that cannot connect speaks on the attach stream, and no more offers are made', async () => {
    const { pool, driver } = await open({ size: 0 });
    // As a remote engine (or one in a VM) would: the mounted directory is an empty one, not the host's.
    const empty = mkdtempSync(join(tmpdir(), 'cp-direct-empty-'));
    chmodSync(empty, 0o755); // as the engine makes a missing bind source
    const channels = driver.directChannels as DirectChannels & {
      offer: DirectChannels['offer'];
    };
    const real = channels.offer.bind(channels);
    let offered = 0;
    channels.offer = async () => {
      const offer = await real();
      if (!offer) return offer;
      offered++;
      (offer.mount as { Source: string }).Source = empty;
      return offer;
    };
    try {
      const first = await pool.run({ code: PROBE });
      expect(first).toMatchObject({ exitCode: 0, transport: 'runner' });
      expect(JSON.parse(first.stdout)).toMatchObject({ dir: [], connect: 'FileNotFoundError' });
      expect(driver.directChannels.disabledBecause).toMatch(/could not connect/);
      expect(offered).toBe(1);
      // The next container gets no offer at all.
      const c = await pool.acquire();
      try {
        expect(await mountsOf(c.id)).toEqual({ mounts: [], env: [] });
        expect((await c.execute(['sh', '-c', 'echo $((6 * 7))'])).stdout).toBe('42\n');
      } finally {
        pool.release(c);
      }
      expect(offered).toBe(1);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('removes its base directory at shutdown, and a dead process’s at the first offer', async () => {
    // A base directory of a process that is gone (a crash): the pid of a process that exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(dead.stdout.toString());
    const stale = join(tmpdir(), `container-pool-ch-${deadPid}-test01`);
    mkdirSync(join(stale, 'c1'), { recursive: true });
    writeFileSync(join(stale, 'c1', 'left'), 'x');
    const ours = () =>
      readdirSync(tmpdir()).filter((n) => n.startsWith(`container-pool-ch-${process.pid}-`));
    const before = ours();
    const { app, pool } = await open({});
    expect((await pool.run({ code: 'print(1)' })).stdout).toBe('1\n');
    expect(existsSync(stale)).toBe(false);
    const mine = ours().filter((n) => !before.includes(n));
    expect(mine).toHaveLength(1);
    await app.close();
    expect(existsSync(join(tmpdir(), mine[0]))).toBe(false);
  });

  it('an offer withdrawn before any connection refuses a later one', async () => {
    const { driver } = await open({ size: 0 });
    const offer = (await driver.directChannels.offer()) as DirectChannelOffer;
    expect(offer).toBeInstanceOf(DirectChannelOffer);
    offer.withdraw();
    await expect(offer.connected).resolves.toBeNull();
    expect(existsSync(offer.mount.Source)).toBe(false);
  });
});
