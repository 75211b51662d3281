import { type Duplex, PassThrough } from 'node:stream';
import Dockerode from 'dockerode';
import {
  ContainerCreateError,
  ContainerPoolError,
  ContainerRemoveError,
  SandboxUnsupportedError,
} from '../../errors/container-pool.errors';
import type { PullPolicy } from '../../interfaces/container-pool-options.interface';
import type {
  ContainerChannel,
  ContainerDriver,
  ContainerSpec,
  DriverContainer,
  DriverExecRequest,
  DriverExecResult,
  EngineEventHandlers,
  EngineInfo,
  EventSubscription,
  ListedContainer,
  ListedState,
  SandboxRequirements,
} from '../container-driver.interface';
import { deadline, labelFilters, REMOVE_TIMEOUT_MS } from './docker-call';
import { toCreateOptions } from './docker-create-options';
import {
  describe,
  isConnectionError,
  statusOf,
  toCreateError,
  toEngineError,
} from './docker-errors';
import { watchDockerEvents, watchDockerImageEvents } from './docker-events';
import { dockerExec, dockerOomKillCount } from './docker-exec';
import { DockerDemuxer } from './docker-demux';
import { type DirectChannelOffer, DirectChannels } from './docker-direct-channel';
import { DockerImages } from './docker-images';
import type { DockerConnectionOptions } from './docker.types';

/** How much of a channel's output waits in the service before the socket pauses. */
const CHANNEL_HIGH_WATER_MARK = 256 * 1024;

/** A PassThrough that says when its first chunk came (the main process spoke on its attached stdout). */
class FirstWritePassThrough extends PassThrough {
  private first: (() => void) | null = null;
  readonly firstWrite = new Promise<void>((resolve) => (this.first = resolve));

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (e?: Error | null, data?: Buffer) => void,
  ): void {
    if (this.first) {
      this.first();
      this.first = null;
    }
    callback(null, chunk);
  }
}

/** The Docker driver's own options (beyond the engine connection). */
export interface DockerDriverOptions {
  /** Offer direct channels (docs/runner-protocol.md, Direct channel). Default true. */
  directChannel?: boolean;
  log?: (message: string) => void;
}

/** Docker's container states as the pool needs them. */
function listedState(state: string): ListedState {
  if (state === 'running') return 'running';
  if (state === 'created') return 'created';
  if (state === 'exited' || state === 'dead') return 'stopped';
  return 'other';
}

/** ContainerDriver over the Docker Engine API, with dockerode. */
export class DockerDriver implements ContainerDriver {
  readonly channels = true;
  readonly docker: Dockerode;
  private readonly images: DockerImages;
  /** The per-container Unix sockets a runner may take instead of the attach stream. */
  readonly directChannels: DirectChannels;

  constructor(
    options?: DockerConnectionOptions | Dockerode,
    driverOptions: DockerDriverOptions = {},
  ) {
    this.docker = options instanceof Dockerode ? options : new Dockerode(options);
    this.images = new DockerImages(this.docker);
    this.directChannels = new DirectChannels(
      driverOptions.directChannel ?? true,
      async () => process.platform === 'linux' && (await this.endpoint()).startsWith('unix://'),
      driverOptions.log,
    );
  }

  /** ping / version / info with a deadline: dockerode accepts `{ abortSignal }` there, its typings omit it. */
  private quickCall<T>(method: 'ping' | 'version' | 'info'): Promise<T> {
    const fn = this.docker[method] as unknown as (opts: object) => Promise<T>;
    return fn.call(this.docker, deadline());
  }

  async info(): Promise<EngineInfo> {
    try {
      await this.quickCall('ping');
      const [version, info] = await Promise.all([
        this.quickCall<Dockerode.DockerVersion>('version'),
        this.quickCall<any>('info'),
      ]);
      const securityOptions: string[] = info.SecurityOptions ?? [];
      return {
        name: `${(version as any).Platform?.Name || 'Docker Engine'} ${version.Version}`,
        endpoint: await this.endpoint(),
        version: version.Version,
        apiVersion: version.ApiVersion,
        os: `${info.OperatingSystem ?? version.Os}`,
        seccomp: securityOptions.some((o) => /(^|,)name=seccomp(,|$)/.test(o) || o === 'seccomp'),
        runtimes: Object.keys(info.Runtimes ?? {}),
        defaultRuntime: info.DefaultRuntime ?? 'runc',
      };
    } catch (err) {
      throw toEngineError(err, 'ping');
    }
  }

  verifySandbox(info: EngineInfo, needs: SandboxRequirements): void {
    if (needs.seccomp && !info.seccomp) {
      throw new SandboxUnsupportedError(
        'the engine reports no seccomp support (docker info: SecurityOptions lacks seccomp), so the sandbox ' +
          'would run without a syscall filter. Use an engine built with seccomp, or set requireSeccomp false ' +
          '(POOL_REQUIRE_SECCOMP=false) only if you accept that risk',
      );
    }
    if (needs.runtime && !info.runtimes.includes(needs.runtime)) {
      throw new SandboxUnsupportedError(
        `runtime "${needs.runtime}" is not registered with the engine (it has ${info.runtimes.join(', ')}); ` +
          `add it to daemon.json "runtimes" or unset POOL_RUNTIME`,
      );
    }
  }

  /** The engine address, as the Docker CLI would print it. */
  async endpoint(): Promise<string> {
    const m = this.docker.modem as unknown as {
      socketPath?: string | (() => Promise<string>);
      protocol?: string;
      host?: string;
      port?: string | number;
    };
    // docker-modem keeps a function that finds the default socket when none was configured.
    const socket = typeof m.socketPath === 'function' ? await m.socketPath() : m.socketPath;
    if (socket) return `unix://${socket}`;
    return `${m.protocol ?? 'http'}://${m.host ?? 'localhost'}${m.port ? `:${m.port}` : ''}`;
  }

  ensureImage(
    image: string,
    policy: PullPolicy,
    log: (message: string) => void,
  ): Promise<string | undefined> {
    return this.images.ensure(image, policy, log);
  }

  async createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<DriverContainer> {
    const offer = spec.channel ? await this.directChannels.offer(spec.runtime ?? '') : null;
    if (!offer) return this.createOnce(spec, null, signal);
    try {
      return await this.createOnce(spec, offer, signal);
    } catch (err) {
      // The engine's own create or start refused the mount (not the runner's readiness: its diagnostics name the
      // path too), naming its source or target: it does not see this host's directories (a remote or VM engine, a
      // host in a container of its own or with a private /tmp) or runc cannot mount it. No more offers, and this
      // create goes again without it.
      if (signal?.aborted || !this.engineRefusals.has(err as object)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
      const said = `${message} ${cause}`;
      if (!said.includes(offer.mount.Source) && !said.includes(offer.mount.Target)) throw err;
      this.directChannels.refused(cause || message);
      // A container the engine made before refusing its start holds the name: it goes first.
      await this.awaitGone(spec.name, signal);
      return this.createOnce(spec, null, signal);
    }
  }

  /** Errors of the engine's create or start of a container (not of what came after its start). */
  private readonly engineRefusals = new WeakSet<object>();

  /** Removes the container of that name and waits until the engine no longer has it (at most ~2 s). */
  private async awaitGone(name: string, signal?: AbortSignal): Promise<void> {
    await this.removeContainer(name).catch(() => undefined);
    for (let i = 0; i < 100 && !signal?.aborted; i++) {
      try {
        await this.docker.getContainer(name).inspect(deadline());
      } catch (err) {
        if (statusOf(err) === 404) return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async createOnce(
    spec: ContainerSpec,
    offer: DirectChannelOffer | null,
    signal?: AbortSignal,
  ): Promise<DriverContainer> {
    const abortCheck = () => {
      if (!signal?.aborted) return;
      const why = signal.reason instanceof Error ? signal.reason.message : 'aborted';
      throw new ContainerCreateError(`the create was given up: ${why}`, { cause: signal.reason });
    };
    let container: Dockerode.Container | undefined;
    let lifeline: Duplex | undefined;
    let made: DriverContainer | undefined;
    let engineStarted = false;
    try {
      const options = toCreateOptions(spec, await this.images.envOf(spec.image, signal));
      if (offer) {
        options.Env = [...(options.Env ?? []), offer.env];
        options.HostConfig!.Mounts = [...(options.HostConfig!.Mounts ?? []), offer.mount];
      }
      container = await this.docker.createContainer({ ...options, abortSignal: signal });
      abortCheck();
      lifeline = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
        // Bounds the call only: the signal never fires once the create has succeeded.
        abortSignal: signal,
      })) as unknown as Duplex;
      abortCheck();
      await container.start({ abortSignal: signal });
      engineStarted = true;
      abortCheck();
      spec.started?.();
      const held = this.held(container, lifeline, spec);
      made = held.container;
      if (offer) await this.takeChannel(made, offer, held.firstStdout, spec.runtime ?? '', signal);
      await spec.ready(made, signal);
      abortCheck();
    } catch (err) {
      offer?.withdraw();
      made?.detach?.();
      lifeline?.destroy();
      // Whatever got created must not stay behind: remove by name (the id may never have arrived).
      this.removeContainer(container?.id ?? spec.name).catch(() => undefined);
      if (signal?.aborted && !(err instanceof ContainerPoolError)) abortCheck();
      const mapped = toCreateError(err, spec.image);
      if (!engineStarted) this.engineRefusals.add(mapped);
      throw mapped;
    }
    return made;
  }

  /**
   * The first of: the main process connected to its direct channel (the channel becomes that socket; stderr stays
   * the attached one), it spoke on its attached stdout (it could not connect: no more offers), the container
   * ended, the create was given up. The offer is withdrawn in every case.
   */
  private async takeChannel(
    made: DriverContainer,
    offer: DirectChannelOffer,
    firstStdout: Promise<void>,
    runtime: string,
    signal?: AbortSignal,
  ): Promise<void> {
    let onAbort = () => undefined as void;
    const aborted = new Promise<'over'>((resolve) => {
      onAbort = () => resolve('over');
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    const first = await Promise.race([
      offer.connected,
      firstStdout.then(() => 'stdio' as const),
      made.exited.then(() => 'over' as const),
      aborted,
    ]);
    signal?.removeEventListener('abort', onAbort);
    offer.withdraw();
    if (first === 'stdio') return this.directChannels.notTaken(runtime);
    if (first === 'over' || first === null) return;
    const attached = made.channel!;
    // Nothing more is expected on the attached stdout; what comes is dropped (the stream must flow to end).
    attached.stdout.resume();
    first.on('error', () => undefined);
    made.channel = { stdin: first, stdout: first, stderr: attached.stderr, direct: true };
    // The runner's end closes the socket after what it sent (an EXIT is still read); letting go destroys it.
    const detach = made.detach;
    made.detach = () => {
      first.destroy();
      detach?.();
    };
  }

  /** The started container, held by its attached stdio (the lifeline). */
  private held(
    container: Dockerode.Container,
    line: Duplex,
    spec: ContainerSpec,
  ): { container: DriverContainer; firstStdout: Promise<void> } {
    let channel: ContainerChannel | undefined;
    let firstStdout = new Promise<void>(() => undefined);
    if (spec.channel) {
      // The main process talks: its output is demultiplexed into two streams that pause the socket while the
      // transport is behind.
      const stdout = new FirstWritePassThrough({ highWaterMark: CHANNEL_HIGH_WATER_MARK });
      firstStdout = stdout.firstWrite;
      const stderr = new PassThrough({ highWaterMark: CHANNEL_HIGH_WATER_MARK });
      const demux = new DockerDemuxer(stdout, stderr);
      demux.on('finish', () => {
        stdout.end();
        stderr.end();
      });
      line.on('close', () => {
        if (!demux.writableEnded) demux.end();
      });
      line.pipe(demux);
      channel = { stdin: line, stdout, stderr };
    } else {
      // Output of the lifeline is none; keep the stream flowing so it can end.
      line.on('data', () => undefined);
    }
    const exited = new Promise<string>((resolve) => {
      line.once('end', () => resolve('the container stopped'));
      line.once('close', () => resolve('the container stopped'));
      line.once('error', (err: Error) => resolve(`its lifeline broke: ${err.message}`));
    });
    return {
      container: {
        id: container.id,
        name: spec.name,
        handle: container,
        exited,
        execUser: spec.user,
        channel,
        // Closing the attached stdin ends the main process's input: the container exits and the engine removes
        // it.
        detach: () => line.destroy(),
      },
      firstStdout,
    };
  }

  exec(target: DriverContainer, request: DriverExecRequest): Promise<DriverExecResult> {
    return dockerExec(this.docker.modem, target, request);
  }

  oomKillCount(target: DriverContainer): Promise<number | null> {
    return dockerOomKillCount(this.docker.modem, target);
  }

  async removeContainer(idOrName: string): Promise<void> {
    try {
      await this.docker
        .getContainer(idOrName)
        .remove({ force: true, v: true, abortSignal: AbortSignal.timeout(REMOVE_TIMEOUT_MS) });
    } catch (err) {
      const status = statusOf(err);
      // 404: already gone; 409: a removal is already in progress (AutoRemove). Both mean done.
      if (status === 404 || status === 409) return;
      if (status === undefined && isConnectionError(err)) {
        throw toEngineError(err, `removing container ${idOrName}`);
      }
      throw new ContainerRemoveError(idOrName, describe(err), { cause: err });
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ListedContainer[]> {
    try {
      const rows = await this.docker.listContainers({
        all: true,
        filters: { label: labelFilters(labels) },
        ...deadline(),
      });
      return rows.map((r) => ({
        id: r.Id,
        name: (r.Names?.[0] ?? r.Id).replace(/^\//, ''),
        state: listedState(r.State),
        engineState: r.State,
        labels: r.Labels ?? {},
        createdAt: new Date(r.Created * 1000),
      }));
    } catch (err) {
      throw toEngineError(err, 'listing containers');
    }
  }

  watchEvents(labels: Record<string, string>, handlers: EngineEventHandlers): EventSubscription {
    return watchDockerEvents(this.docker, labels, handlers);
  }

  watchImageEvents(onEvent: (event: { action: string; image: string }) => void): EventSubscription {
    return watchDockerImageEvents(this.docker, onEvent);
  }

  close(): Promise<void> {
    // dockerode keeps no pool of its own beyond Node's agent; hijacked streams are closed by their owners.
    this.directChannels.close();
    return Promise.resolve();
  }
}
