import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the container sees its channel directory (a read-only bind mount of a host directory of its own). */
export const DIRECT_CHANNEL_DIR = '/run/container-pool';
/** The socket's path inside the container, given to the main process in this variable. */
export const DIRECT_CHANNEL_ENV = 'CONTAINER_POOL_CHANNEL';
const SOCKET_NAME = 'channel.sock';
/** Host directories of this process: `<tmpdir>/container-pool-ch-<pid>-XXXXXX` (0700). */
const BASE_PREFIX = 'container-pool-ch-';
/** sun_path holds 108 bytes with its NUL. */
const MAX_SOCKET_PATH = 107;

export interface DirectChannelMount {
  Type: 'bind';
  Source: string;
  Target: string;
  ReadOnly: true;
}

/**
 * One container's offer: a listening socket in a host directory of its own, bind-mounted read-only into the
 * container at DIRECT_CHANNEL_DIR. The first connection is the main process (nothing else runs in the container
 * before it); the listener then closes (which unlinks the socket) and the directory is removed, so nothing in
 * the container can connect again, nor can anything in another container (each mounts only its own directory),
 * nor another user of the host (the base directory is 0700).
 */
export class DirectChannelOffer {
  readonly mount: DirectChannelMount;
  readonly env: string;
  /** The first connection, or null once the offer was withdrawn without one. */
  readonly connected: Promise<Socket | null>;
  private settle!: (socket: Socket | null) => void;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly server: Server,
  ) {
    this.mount = { Type: 'bind', Source: dir, Target: DIRECT_CHANNEL_DIR, ReadOnly: true };
    this.env = `${DIRECT_CHANNEL_ENV}=${DIRECT_CHANNEL_DIR}/${SOCKET_NAME}`;
    this.connected = new Promise((resolve) => (this.settle = resolve));
    server.on('connection', (socket) => {
      if (this.closed) {
        socket.destroy();
        return;
      }
      this.settle(socket);
      this.withdraw();
    });
    server.on('error', () => this.withdraw());
  }

  /** No (further) connection is taken: the socket and its directory go. Idempotent. */
  withdraw(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    try {
      rmSync(join(this.dir, SOCKET_NAME), { force: true });
      rmdirSync(this.dir);
    } catch {
      // Already gone, or the base directory was removed under us: nothing is left to offer either way.
    }
    this.settle(null);
  }
}

/**
 * The Docker driver's direct channels (ContainerSpec.channel): offered only when the engine is reached over a
 * local Unix socket on Linux (a bind mount of a host directory reaches the container then); once a main process
 * did not take an offer (it spoke on its attached stdio first: a remote or VM engine, a runtime such as gVisor
 * that does not pass host sockets), no more are made.
 */
export class DirectChannels {
  private base: string | null = null;
  private counter = 0;
  private off: string | null;

  constructor(
    enabled: boolean,
    private readonly local: () => Promise<boolean>,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    this.off = enabled ? null : 'directChannel is false';
  }

  /** Why none are offered (null: they are). */
  get disabledBecause(): string | null {
    return this.off;
  }

  /** A listening offer for one container, or null (none offered, or it could not be made: the attach stream). */
  async offer(): Promise<DirectChannelOffer | null> {
    if (this.off) return null;
    if (!(await this.local())) {
      this.disable('the engine is not on a local Unix socket');
      return null;
    }
    try {
      const dir = join(this.baseDir(), `c${++this.counter}`);
      const path = join(dir, SOCKET_NAME);
      if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
        this.disable(`its socket path would be longer than ${MAX_SOCKET_PATH} bytes (${path})`);
        return null;
      }
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      const server = createServer({ pauseOnConnect: false });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
      // The main process runs as the sandbox user: it may connect (connect() needs write permission).
      chmodSync(path, 0o666);
      return new DirectChannelOffer(dir, server);
    } catch (err) {
      this.disable(`its socket could not be made: ${(err as Error).message}`);
      return null;
    }
  }

  /** A main process answered on its attached stdio instead: the engine cannot pass the socket. */
  notTaken(): void {
    this.disable(
      'a runner could not connect to its socket (the engine does not share this host, or its runtime does ' +
        'not pass host sockets)',
    );
  }

  private disable(reason: string): void {
    if (this.off) return;
    this.off = reason;
    this.log(`direct runner channels are off: ${reason}; runners use the engine's attach stream`);
  }

  private baseDir(): string {
    if (this.base) return this.base;
    sweepStaleBases();
    this.base = mkdtempSync(join(tmpdir(), `${BASE_PREFIX}${process.pid}-`));
    chmodSync(this.base, 0o700);
    return this.base;
  }

  /** Removes this process's base directory (at the driver's close; the per-container ones are gone by then). */
  close(): void {
    if (!this.base) return;
    rmSync(this.base, { recursive: true, force: true });
    this.base = null;
  }
}

/** Base directories of processes that are gone (a crash leaves an empty one behind, or a socket of a create). */
function sweepStaleBases(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${BASE_PREFIX}(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // Another user's, or going: not ours to insist on.
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
