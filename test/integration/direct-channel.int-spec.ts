import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { CONTAINER_DRIVER } from '../../src/container-pool/container-pool.constants';
import {
  DirectChannelOffer,
  DirectChannels,
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
        source: expect.stringContaining(`/container-pool-${process.getuid!()}/`),
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

  /** Makes the driver's offers mount `source` (or at `target`) instead of their own; counts them. */
  function redirectOffers(driver: DockerDriver, source: string | null, target?: string) {
    const channels = driver.directChannels as DirectChannels & { offer: DirectChannels['offer'] };
    const real = channels.offer.bind(channels);
    const count = { offered: 0 };
    channels.offer = async (runtime?: string) => {
      const offer = await real(runtime);
      if (!offer) return offer;
      count.offered++;
      if (source) (offer.mount as { Source: string }).Source = source;
      if (target) (offer.mount as { Target: string }).Target = target;
      return offer;
    };
    return count;
  }

  it('a runner that cannot connect speaks on the attach stream; no more offers for its runtime', async () => {
    const { pool, driver } = await open({ size: 0 });
    // As a runtime that does not pass host sockets would leave it: the mounted directory has no socket.
    const empty = mkdtempSync(join(tmpdir(), 'cp-direct-empty-'));
    chmodSync(empty, 0o755);
    const count = redirectOffers(driver, empty);
    try {
      const first = await pool.run({ code: PROBE });
      expect(first).toMatchObject({ exitCode: 0, transport: 'runner' });
      expect(JSON.parse(first.stdout)).toMatchObject({ dir: [], connect: 'FileNotFoundError' });
      expect(driver.directChannels.disabledFor('')).toMatch(/could not connect/);
      expect(driver.directChannels.disabledFor('runsc')).toBeNull();
      expect(count.offered).toBe(1);
      // The next container gets no offer at all.
      const c = await pool.acquire();
      try {
        expect(await mountsOf(c.id)).toEqual({ mounts: [], env: [] });
        expect((await c.execute(['sh', '-c', 'echo $((6 * 7))'])).stdout).toBe('42\n');
      } finally {
        pool.release(c);
      }
      expect(count.offered).toBe(1);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('an engine that refuses the mount (it does not see this host): the create goes again without it', async () => {
    const { pool, driver } = await open({ size: 0 });
    // As a remote engine, one in a VM, or a host with a private /tmp sees it: no such directory.
    const count = redirectOffers(driver, join(tmpdir(), `cp-direct-missing-${process.pid}`, 'c1'));
    const r = await pool.run({ code: PROBE });
    expect(r).toMatchObject({ exitCode: 0, transport: 'runner' });
    expect(JSON.parse(r.stdout)).toMatchObject({ env: [], dir: 'FileNotFoundError' });
    expect(await mountsOf(r.containerId)).toEqual({ mounts: [], env: [] });
    expect(driver.directChannels.disabledBecause).toMatch(/refused the channel's bind mount/);
    expect(count.offered).toBe(1);
    expect(pool.stats().totals.failedCreates).toBe(0);
    expect((await pool.run({ code: 'print(2)' })).stdout).toBe('2\n');
    expect(count.offered).toBe(1);
  });

  it('keeps its bases in a private root, removes them at shutdown, and a crashed owner’s at the first offer', async () => {
    const root = join(tmpdir(), `container-pool-${process.getuid!()}`);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    // A crashed owner's base: its owner file, nobody listening on its alive.sock.
    const stale = join(root, 'deadbeef0001');
    mkdirSync(join(stale, 'c1'), { recursive: true });
    writeFileSync(join(stale, 'owner'), 'gone pid 1\n');
    // Its alive.sock as a killed owner leaves it: the socket file, nobody listening (a connect is refused).
    execFileSync('python3', [
      '-c',
      'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      join(stale, 'alive.sock'),
    ]);
    writeFileSync(join(stale, 'c1', 'channel.sock'), '');
    // A live owner's (another instance, maybe in another PID namespace): it listens, so it stays.
    const live = join(root, 'deadbeef0002');
    mkdirSync(live, { recursive: true });
    const server = createServer();
    await new Promise<void>((r) => server.listen(join(live, 'alive.sock'), r));
    writeFileSync(join(live, 'owner'), 'elsewhere pid 1\n');
    const mine = () =>
      readdirSync(root).filter((n) => {
        try {
          return readFileSync(join(root, n, 'owner'), 'utf8').endsWith(` pid ${process.pid}\n`);
        } catch {
          return false;
        }
      });
    const before = mine();
    try {
      const { app, pool } = await open({});
      expect((await pool.run({ code: 'print(1)' })).stdout).toBe('1\n');
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live)).toBe(true);
      const made = mine().filter((n) => !before.includes(n));
      expect(made).toHaveLength(1);
      expect(lstatSync(root).mode & 0o777).toBe(0o700);
      await app.close();
      expect(existsSync(join(root, made[0]))).toBe(false);
    } finally {
      server.close();
      rmSync(live, { recursive: true, force: true });
    }
  });

  it('refuses a private root that is not a directory of its own with mode 0700', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'cp-direct-root-'));
    try {
      const target = join(parent, 'elsewhere');
      mkdirSync(target, { mode: 0o700 });
      symlinkSync(target, join(parent, `container-pool-${process.getuid!()}`));
      const channels = new DirectChannels(true, () => Promise.resolve(true), undefined, parent);
      await expect(channels.offer()).resolves.toBeNull();
      expect(channels.disabledBecause).toMatch(/no private directory.*a symlink/);
      expect(readdirSync(target)).toEqual([]);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
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
