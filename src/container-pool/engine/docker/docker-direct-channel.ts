import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { DIRECT_CHANNEL_DIR } from '../../container-pool.constants';

/** Where the container sees its channel directory (a read-only bind mount of a host directory of its own). */
export { DIRECT_CHANNEL_DIR };
/** The socket's path inside the container, given to the main process in this variable. */
export const DIRECT_CHANNEL_ENV = 'CONTAINER_POOL_CHANNEL';
const SOCKET_NAME = 'channel.sock';
/** A base directory's liveness: its owner listens here while it runs (a crashed owner's refuses). */
const ALIVE_NAME = 'alive.sock';
/** Who made a base directory (for the operator; never read to decide anything). */
const OWNER_NAME = 'owner';
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
 * nor another user of the host (the private root above it is 0700).
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
    removeChannelDir(this.dir);
    this.settle(null);
  }
}

/** A per-container directory: its socket (if the listener left it), then itself. Never recursive. */
function removeChannelDir(dir: string): void {
  try {
    unlinkSync(join(dir, SOCKET_NAME));
  } catch {
    // The listener's close unlinked it already.
  }
  try {
    rmdirSync(dir);
  } catch {
    // Gone already (the base went at shutdown).
  }
}

/**
 * The Docker driver's direct channels (ContainerSpec.channel): offered only when the engine is reached over a
 * local Unix socket on Linux (a bind mount of a host directory reaches the container then). Offers stop for a
 * runtime once one of its main processes did not take its offer (it spoke on its attached stdio first: a runtime
 * such as gVisor that does not pass host sockets), and for all once the engine refused a create or start for the
 * mount itself (it does not see this host's directories: a remote or VM engine, a host in a container of its own
 * or with a private /tmp); such a create is retried at once without the offer.
 */
export class DirectChannels {
  private base: Promise<string> | null = null;
  private aliveServer: Server | null = null;
  private basePath: string | null = null;
  private closed = false;
  private counter = 0;
  private off: string | null;
  private readonly offRuntimes = new Map<string, string>();
  private isLocal: Promise<boolean> | null = null;

  constructor(
    enabled: boolean,
    private readonly local: () => Promise<boolean>,
    private readonly log: (message: string) => void = () => undefined,
    /** Where the private root goes (`<tmpdir>/container-pool-<uid>`); tests only. */
    private readonly parent: string = tmpdir(),
  ) {
    this.off = enabled ? null : 'directChannel is false';
  }

  /** Why none are offered (null: they are, for runtimes without a reason of their own). */
  get disabledBecause(): string | null {
    return this.off;
  }

  /** Why none are offered for containers of this runtime ('' for the engine's default), or null. */
  disabledFor(runtime = ''): string | null {
    return this.off ?? this.offRuntimes.get(runtime) ?? null;
  }

  /** A listening offer for one container, or null (none offered, or it could not be made: the attach stream). */
  async offer(runtime = ''): Promise<DirectChannelOffer | null> {
    if (this.closed || this.disabledFor(runtime)) return null;
    // Where the engine is does not change: asked once (docker-modem may look for its default socket each time).
    this.isLocal ??= this.local();
    if (!(await this.isLocal)) {
      this.disable('the engine is not on a local Unix socket');
      return null;
    }
    let base: string;
    try {
      // One base per process, however many creates ask at once.
      this.base ??= this.makeBase().catch((err: unknown) => {
        this.base = null;
        throw err;
      });
      base = await this.base;
      if (this.closed) return null;
    } catch (err) {
      this.disable(`no private directory for them: ${(err as Error).message}`);
      return null;
    }
    const dir = join(base, `c${++this.counter}`);
    const path = join(dir, SOCKET_NAME);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      this.disable(`their socket path would be longer than ${MAX_SOCKET_PATH} bytes (${path})`);
      return null;
    }
    let server: Server | null = null;
    try {
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      const listening = createServer();
      server = listening;
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(path, () => {
          listening.off('error', reject);
          resolve();
        });
      });
      // The main process runs as the sandbox user: it may connect (connect() needs write permission).
      chmodSync(path, 0o666);
      return new DirectChannelOffer(dir, listening);
    } catch (err) {
      server?.close();
      removeChannelDir(dir);
      this.disable(`their socket could not be made: ${(err as Error).message}`);
      return null;
    }
  }

  /** A main process answered on its attached stdio instead: containers of its runtime cannot take the socket. */
  notTaken(runtime = '', said = ''): void {
    if (this.disabledFor(runtime)) return;
    const reason =
      `a runner${runtime ? ` of runtime ${runtime}` : ''} could not connect to its socket` +
      (said ? ` (it said: ${said.replace(/[^\x20-\x7e]/g, '?').slice(0, 300)})` : '');
    this.offRuntimes.set(runtime, reason);
    this.log(
      `direct runner channels are off${runtime ? ` for runtime ${runtime}` : ''}: ${reason}; runners use the ` +
        "engine's attach stream",
    );
  }

  /** The engine refused a create or start with the mount: it does not see this host's directories. */
  refused(message: string): void {
    this.disable(
      `the engine refused the channel's bind mount (${message.slice(0, 300)}): it does not see this host's ` +
        `${this.parent}`,
    );
  }

  private disable(reason: string): void {
    if (this.off) return;
    this.off = reason;
    this.log(`direct runner channels are off: ${reason}; runners use the engine's attach stream`);
  }

  /**
   * This process's base directory, in a private root of its uid (`<tmpdir>/container-pool-<uid>`, 0700, checked:
   * a real directory of this uid, so no other user can plant or swap anything in it). Bases of owners that are
   * gone are removed first: an owner listens on `alive.sock` in its base while it runs (a connection refused is a
   * crashed owner, in whatever PID namespace it ran).
   */
  private async makeBase(): Promise<string> {
    const root = join(this.parent, `container-pool-${process.getuid?.() ?? 'user'}`);
    try {
      mkdirSync(root, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = lstatSync(root);
    const uid = process.getuid?.();
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
      throw new Error(
        `${root} is not a directory of uid ${uid} with mode 0700 (${st.isSymbolicLink() ? 'a symlink' : `mode ${(st.mode & 0o777).toString(8)}, uid ${st.uid}`})`,
      );
    }
    await sweepStaleBases(root);
    const base = join(root, randomBytes(6).toString('hex'));
    mkdirSync(base, { mode: 0o700 });
    const alive = createServer((c) => c.destroy());
    try {
      await new Promise<void>((resolve, reject) => {
        alive.once('error', reject);
        alive.listen(join(base, ALIVE_NAME), () => {
          alive.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      alive.close();
      rmSync(base, { recursive: true, force: true });
      throw err;
    }
    // An accept error (out of descriptors while another instance's sweep knocks) is no reason to crash.
    alive.on('error', () => undefined);
    alive.unref();
    // Last: a base with an owner file and nobody on its alive.sock is a crashed owner's.
    writeFileSync(join(base, OWNER_NAME), `${hostname()} pid ${process.pid}\n`);
    this.aliveServer = alive;
    this.basePath = base;
    if (this.closed) this.close();
    return base;
  }

  /** Removes this process's base directory (at the driver's close; the per-container ones are gone by then). */
  close(): void {
    this.closed = true;
    this.aliveServer?.close();
    this.aliveServer = null;
    if (!this.basePath) return;
    rmSync(this.basePath, { recursive: true, force: true });
    this.basePath = null;
  }
}

/** Bases in the private root whose owner no longer listens on its alive.sock (it crashed). */
async function sweepStaleBases(root: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const base = join(root, name);
    if (!/^[0-9a-f]{12}$/.test(name) || (await ownerAlive(base))) continue;
    try {
      rmSync(base, { recursive: true, force: true });
    } catch {
      // Going already.
    }
  }
}

/** A base without its owner file for this long is a crash's in the middle of making it. */
const UNFINISHED_BASE_MS = 60_000;

function ownerAlive(base: string): Promise<boolean> {
  try {
    readFileSync(join(base, OWNER_NAME));
  } catch {
    // A base still being made (no owner file yet) is someone's, unless it has been so for a minute.
    try {
      return Promise.resolve(Date.now() - lstatSync(base).mtimeMs < UNFINISHED_BASE_MS);
    } catch {
      return Promise.resolve(true);
    }
  }
  return new Promise((resolve) => {
    const c = createConnection(join(base, ALIVE_NAME));
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    // Only a refusal is a crashed owner (its socket file is left, nobody listens): out of descriptors, no such
    // file (a tmp cleaner took the name of a live one) and the rest leave the base alone.
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED'));
  });
}
