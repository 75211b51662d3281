import { LABELS, MANAGED_BY_VALUE } from '../container-pool.constants';
import { ContainerPoolError, EngineUnavailableError } from '../errors/container-pool.errors';
import type {
  ContainerDriver,
  EngineEvent,
  EngineInfo,
  EventSubscription,
} from './container-driver.interface';

/** What the monitor writes to (Nest's Logger fits). */
export interface EngineLog {
  log(message: string): void;
  error(message: string): void;
}

type StatusListener = (event: 'down' | 'reconnected', error?: ContainerPoolError) => void;
type ContainerListener = (event: EngineEvent) => void;

function asEngineError(err: unknown): ContainerPoolError {
  if (err instanceof ContainerPoolError) return err;
  return new EngineUnavailableError(err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

/**
 * One per driver: whether the engine answers, and its event stream for this instance's containers (subscribed by
 * the managed-by and owner labels, fanned out by container id). Every pool on the driver shares it. It never
 * closes the driver: the driver's owner does.
 */
export class EngineMonitor {
  private info: EngineInfo | null = null;
  private up = false;
  private closed = false;
  private subscription?: EventSubscription;
  private readonly statusListeners = new Set<StatusListener>();
  private readonly containerListeners = new Map<string, Set<ContainerListener>>();
  private readonly imageListeners = new Set<() => void>();
  private imageSubscription?: EventSubscription;

  constructor(
    private readonly driver: ContainerDriver,
    /** The owner label value of this process's containers. */
    private readonly instanceId: string,
    private readonly logger: EngineLog,
  ) {}

  /** The engine answered the last check and nothing failed since. */
  get available(): boolean {
    return this.up;
  }

  /** Engine facts from the last successful check while it is available, else null. */
  get engine(): EngineInfo | null {
    return this.up ? this.info : null;
  }

  /** Starts following the engine's events (idempotent). */
  start(): void {
    if (this.subscription || this.closed) return;
    this.subscription = this.driver.watchEvents(
      { [LABELS.managedBy]: MANAGED_BY_VALUE, [LABELS.owner]: this.instanceId },
      {
        onEvent: (e) => {
          const listeners = this.containerListeners.get(e.containerId);
          if (listeners) for (const l of [...listeners]) l(e);
        },
        onStatus: (connected) => this.onStream(connected),
      },
    );
    this.followImages();
  }

  /** The engine's image events (a re-tag), from start() on, until the returned function is called. */
  watchImages(listener: () => void): () => void {
    this.imageListeners.add(listener);
    if (this.subscription) this.followImages();
    return () => this.imageListeners.delete(listener);
  }

  private followImages(): void {
    if (this.imageSubscription || this.closed || !this.imageListeners.size) return;
    this.imageSubscription = this.driver.watchImageEvents?.(() => {
      for (const l of [...this.imageListeners]) l();
    });
  }

  /** Pings the engine; logs it when it (re)appears. A failure marks it down and rejects. */
  async check(): Promise<EngineInfo> {
    let info: EngineInfo;
    try {
      info = await this.driver.info();
    } catch (err) {
      const error = asEngineError(err);
      this.markDown(error);
      throw error;
    }
    if (!this.info || !this.up) {
      this.logger.log(
        `engine: ${info.name} at ${info.endpoint} (API ${info.apiVersion}, ${info.os}, runtimes ${info.runtimes.join('/')}, ` +
          `seccomp ${info.seccomp ? 'on' : 'OFF'})`,
      );
    }
    this.info = info;
    this.up = true;
    return info;
  }

  /** Whether the engine answers now (a ping, without marking it down). */
  answers(): Promise<boolean> {
    return this.driver.info().then(
      () => true,
      (err: unknown) => {
        this.markDown(asEngineError(err));
        return false;
      },
    );
  }

  /** Records an engine failure (only EngineUnavailableError counts) and tells every pool. Logged once. */
  markDown(error: ContainerPoolError): void {
    if (!(error instanceof EngineUnavailableError)) return;
    if (this.up) this.logger.error(`engine stopped answering: ${error.message}`);
    this.up = false;
    for (const l of [...this.statusListeners]) l('down', error);
  }

  subscribe(listener: StatusListener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** The engine's events about one container, until the returned function is called. */
  watchContainer(id: string, listener: ContainerListener): () => void {
    let set = this.containerListeners.get(id);
    if (!set) this.containerListeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (!set.size) this.containerListeners.delete(id);
    };
  }

  private onStream(connected: boolean): void {
    if (this.closed) return;
    if (connected) {
      for (const l of [...this.statusListeners]) l('reconnected');
      return;
    }
    // The stream broke: maybe the engine restarted. Check now; lifelines tell which containers died.
    void this.answers();
  }

  /** Stops the event stream. The driver stays open: its owner closes it. */
  close(): void {
    this.closed = true;
    this.subscription?.close();
    this.subscription = undefined;
    this.imageSubscription?.close();
    this.imageSubscription = undefined;
    this.imageListeners.clear();
    this.statusListeners.clear();
    this.containerListeners.clear();
  }
}
