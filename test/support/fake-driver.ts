import {
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
} from '../../src/container-pool/engine/container-driver.interface';
import {
  ContainerLostError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
  SandboxUnsupportedError,
} from '../../src/container-pool/errors/container-pool.errors';

export interface FakeContainer extends DriverContainer {
  spec: ContainerSpec;
  die(reason?: string): void;
  alive: boolean;
  removed: boolean;
}

/** A create held in flight by the test (FakeDriver.manualCreates). */
export interface PendingCreate {
  spec: ContainerSpec;
  /** Lets the create finish: the container exists and runs. */
  succeed(): void;
  /** Makes the create fail with this error. */
  fail(error: Error): void;
}

/** A removal held in flight by the test (FakeDriver.manualRemoves). */
export interface PendingRemove {
  id: string;
  /** The engine removes the container (its lifeline ends) and the call resolves. */
  finish(): void;
}

/** What a fake exec produces: the program's whole output, written to the caller's sinks by the fake. */
export interface FakeExecResult {
  exitCode: number | null;
  stdout: Buffer;
  stderr: Buffer;
  truncated: boolean;
  aborted: boolean;
}

/** A container as the fake engine lists it, with Docker's state words (exited, dead, created, running). */
export interface FakeListed {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
  createdAt: Date;
}

function listedState(state: string): ListedState {
  if (state === 'running' || state === 'created') return state;
  return state === 'exited' || state === 'dead' ? 'stopped' : 'other';
}

type ExecBehaviour = (
  req: DriverExecRequest,
  container: FakeContainer,
) => Promise<FakeExecResult> | FakeExecResult;

/** An in-memory engine for unit tests: every call is counted and can be made slow or failing. */
export class FakeDriver implements ContainerDriver {
  engineUp = true;
  seccomp = true;
  imagePresent = true;
  createDelayMs = 0;
  createError: Error | null = null;
  /** Creates wait for this when set (to hold them in flight). */
  createGate: Promise<void> | null = null;
  /** Creates stay in flight until the test settles them from `pendingCreates` (aborting fails them). */
  manualCreates = false;
  readonly pendingCreates: PendingCreate[] = [];
  /** Removals stay in flight until the test finishes them from `pendingRemoves`. */
  manualRemoves = false;
  readonly pendingRemoves: PendingRemove[] = [];
  readonly containers = new Map<string, FakeContainer>();
  readonly created: FakeContainer[] = [];
  readonly removedIds: string[] = [];
  readonly removeCounts = new Map<string, number>();
  /** Removals of these ids fail with the error. */
  readonly removeErrors = new Map<string, Error>();
  /** The memory cgroup's OOM kill counter per container id (oomKillCount). */
  readonly oomKills = new Map<string, number>();
  /** Called with every container the fake engine creates (e.g. to let it die at once). */
  onCreated?: (c: FakeContainer) => void;
  listed: FakeListed[] = [];
  handlers?: EngineEventHandlers;
  execBehaviour: ExecBehaviour = (req) => ({
    exitCode: 0,
    stdout: Buffer.from(`ran ${req.cmd.join(' ')}\n`),
    stderr: Buffer.alloc(0),
    truncated: false,
    aborted: false,
  });
  private seq = 0;
  createCalls = 0;
  maxCreatingAtOnce = 0;
  private creatingNow = 0;

  info(): Promise<EngineInfo> {
    if (!this.engineUp)
      return Promise.reject(new EngineUnavailableError('connect ECONNREFUSED (fake)'));
    return Promise.resolve({
      name: 'Fake Engine 1.0',
      endpoint: 'fake://',
      version: '1.0',
      apiVersion: '1.41',
      os: 'fake',
      seccomp: this.seccomp,
      runtimes: ['runc'],
      defaultRuntime: 'runc',
    });
  }

  /** Images the fake engine does not have (ensureImage fails for them only); `imagePresent` fails every one. */
  readonly missingImages = new Set<string>();
  /** Every image ensureImage() was asked for, in order. */
  readonly ensuredImages: string[] = [];

  /** Image ids by name, where not `sha256:fake-<image>` (a test re-tags a name by setting it). */
  readonly imageIds = new Map<string, string>();

  /** Resolves with the image's fake id (`sha256:fake-<image>` unless imageIds says) unless it is missing. */
  ensureImage(image = 'fake:latest'): Promise<string> {
    this.ensuredImages.push(image);
    if (!this.engineUp) return Promise.reject(new EngineUnavailableError('down (fake)'));
    if (!this.imagePresent || this.missingImages.has(image)) {
      return Promise.reject(new ImageUnavailableError(image, 'no registry (fake)'));
    }
    return Promise.resolve(this.imageIds.get(image) ?? `sha256:fake-${image}`);
  }

  private imageListeners = new Set<(event: { action: string; image: string }) => void>();

  watchImageEvents(onEvent: (event: { action: string; image: string }) => void): EventSubscription {
    this.imageListeners.add(onEvent);
    return { close: () => this.imageListeners.delete(onEvent) };
  }

  /** The fake engine reports an image event (e.g. `tag` of `image`). */
  imageEvent(image: string, action = 'tag'): void {
    for (const l of [...this.imageListeners]) l({ action, image });
  }

  async createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<DriverContainer> {
    this.createCalls++;
    this.creatingNow++;
    this.maxCreatingAtOnce = Math.max(this.maxCreatingAtOnce, this.creatingNow);
    try {
      if (this.createGate) await this.createGate;
      if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
      if (this.manualCreates) await this.holdCreate(spec, signal);
      if (!this.engineUp) throw new EngineUnavailableError('connect ECONNREFUSED (fake)');
      if (this.createError) throw this.createError;
      if (signal?.aborted) throw new ExecutionAbortedError('create', signal.reason);
      const id = (++this.seq).toString(16).padStart(64, 'a');
      let die!: (reason: string) => void;
      const exited = new Promise<string>((r) => (die = r));
      const c: FakeContainer = {
        id,
        name: spec.name,
        handle: { id },
        execUser: spec.user,
        exited,
        spec,
        alive: true,
        removed: false,
        die: (reason = 'killed (fake)') => {
          if (!c.alive) return;
          c.alive = false;
          die(reason);
        },
      };
      await spec.ready(c, signal);
      this.containers.set(id, c);
      this.created.push(c);
      this.onCreated?.(c);
      return c;
    } finally {
      this.creatingNow--;
    }
  }

  private holdCreate(spec: ContainerSpec, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry: PendingCreate = {
        spec,
        succeed: () => settle(() => resolve()),
        fail: (error) => settle(() => reject(error)),
      };
      const onAbort = () =>
        settle(() => reject(new ExecutionAbortedError('Container creation', signal?.reason)));
      const settle = (how: () => void) => {
        const i = this.pendingCreates.indexOf(entry);
        if (i < 0) return;
        this.pendingCreates.splice(i, 1);
        signal?.removeEventListener('abort', onAbort);
        how();
      };
      this.pendingCreates.push(entry);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async exec(target: DriverContainer, request: DriverExecRequest): Promise<DriverExecResult> {
    const c = this.containers.get(target.id);
    if (!c || !c.alive) throw new ContainerLostError(target.name, 'gone (fake)');
    const r = await this.execBehaviour(request, c);
    if (r.stdout.length) request.stdout.write(r.stdout);
    if (r.stderr.length) request.stderr.write(r.stderr);
    return { exitCode: r.exitCode, aborted: r.aborted };
  }

  verifySandbox(info: EngineInfo, needs: SandboxRequirements): void {
    if (needs.seccomp && !info.seccomp) {
      throw new SandboxUnsupportedError('the engine reports no seccomp support (fake)');
    }
    if (needs.runtime && !info.runtimes.includes(needs.runtime)) {
      throw new SandboxUnsupportedError(`runtime "${needs.runtime}" is not registered (fake)`);
    }
  }

  removeContainer(id: string): Promise<void> {
    if (!this.engineUp) return Promise.reject(new EngineUnavailableError('down (fake)'));
    this.removeCounts.set(id, (this.removeCounts.get(id) ?? 0) + 1);
    const refusal = this.removeErrors.get(id);
    if (refusal) return Promise.reject(refusal);
    if (this.manualRemoves) {
      return new Promise<void>((resolve) => {
        const entry: PendingRemove = {
          id,
          finish: () => {
            const i = this.pendingRemoves.indexOf(entry);
            if (i < 0) return;
            this.pendingRemoves.splice(i, 1);
            this.finishRemove(id);
            resolve();
          },
        };
        this.pendingRemoves.push(entry);
      });
    }
    this.finishRemove(id);
    return Promise.resolve();
  }

  private finishRemove(id: string): void {
    const c = this.containers.get(id);
    if (c) {
      this.removedIds.push(id);
      c.removed = true;
      this.containers.delete(id);
      // The real engine ends the lifeline when the container goes.
      c.die('removed');
    }
  }

  oomKillCount(target: DriverContainer): Promise<number | null> {
    return Promise.resolve(this.oomKills.get(target.id) ?? 0);
  }

  listContainers(): Promise<ListedContainer[]> {
    if (!this.engineUp) return Promise.reject(new EngineUnavailableError('down (fake)'));
    return Promise.resolve(
      this.listed.map((r): ListedContainer => ({
        ...r,
        state: listedState(r.state),
        engineState: r.state,
      })),
    );
  }

  watchEvents(_labels: Record<string, string>, handlers: EngineEventHandlers): EventSubscription {
    this.handlers = handlers;
    return { close: () => (this.handlers = undefined) };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Containers still on the fake engine. */
  get live(): FakeContainer[] {
    return [...this.containers.values()];
  }
}

/** An exec behaviour that runs until aborted (for timeouts and aborts). */
export const hangingExec: ExecBehaviour = (req) =>
  new Promise((resolve) => {
    const done = () =>
      resolve({
        exitCode: null,
        stdout: Buffer.from('partial'),
        stderr: Buffer.alloc(0),
        truncated: false,
        aborted: true,
      });
    if (req.signal.aborted) return done();
    req.signal.addEventListener('abort', done, { once: true });
  });
