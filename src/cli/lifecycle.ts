import type { INestApplication, INestApplicationContext, LoggerService } from '@nestjs/common';
import { SHUTDOWN_SIGNALS, takeEarlySignals } from './early-signals';

export { SHUTDOWN_SIGNALS };

/** Time the shutdown gets beyond the pool's own grace before the process gives up and exits with 1. */
export const SHUTDOWN_SLACK_MS = 4_000;

/** How often a shutdown closes the HTTP connections that fell idle (kept alive by their clients). */
const IDLE_CONNECTIONS_EVERY_MS = 100;

export interface ServiceLifecycleOptions {
  logger: LoggerService;
  /** process.exit, replaceable in tests. */
  exit?: (code: number) => void;
  /** The pool's shutdownGraceMs, once known: the shutdown is given that plus SHUTDOWN_SLACK_MS. */
  graceMs?: () => number | undefined;
}

/**
 * Stops the runnable service gracefully, exactly once, with exit code 0: on SIGTERM, SIGINT or SIGHUP, and, when
 * watching its parent, as soon as the process that started it is gone (`npm run serve` runs the service under
 * npm and a shell; a signal that ends those must not leave the service behind with PPID 1).
 *
 * Unlike `app.enableShutdownHooks()`, which re-raises the signal after closing (exit status 128+n), the process
 * exits 0 after a clean shutdown, and a repeated signal (Ctrl-C reaches both npm, which forwards it, and the
 * service) does not interrupt the shutdown in progress.
 */
export class ServiceLifecycle {
  private app?: INestApplicationContext;
  private reason?: string;
  private readonly watchTimers: NodeJS.Timeout[] = [];
  private readonly handlers = new Map<string, () => void>();
  private readonly exit: (code: number) => void;

  constructor(private readonly options: ServiceLifecycleOptions) {
    this.exit = options.exit ?? ((code) => process.exit(code));
  }

  /** Whether a shutdown was asked for. */
  get stopping(): boolean {
    return this.reason !== undefined;
  }

  /**
   * Listens to the shutdown signals (from now on: a signal during start-up stops the app once it exists), and
   * takes over from catchEarlySignals(): a signal that arrived while the service was loading stops it now.
   */
  listen(signals: readonly string[] = SHUTDOWN_SIGNALS): this {
    for (const signal of signals) {
      const handler = () => this.stop(`received ${signal}`);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
    for (const signal of takeEarlySignals()) this.stop(`received ${signal} while loading`);
    return this;
  }

  /**
   * Stops the service when its parent process is gone. `expected` is the pid its parent must be (what
   * `npm run serve` passes as CONTAINER_POOL_PARENT_PID): when that process is already gone, the service was
   * re-parented during its boot and stops at once. Without it, the parent is whichever process is the parent
   * now. A parent that is the process's own is watched by the parent pid changing (re-parenting happens only when
   * it dies, so a reused pid cannot fool it); any other process by whether it still exists.
   */
  watchParent(
    intervalMs = 250,
    ppid: () => number = () => process.ppid,
    expected?: number,
    exists: (pid: number) => boolean = processExists,
  ): this {
    const parent = expected ?? ppid();
    const own = ppid() === parent;
    const gone = own ? () => ppid() !== parent : () => !exists(parent);
    if (gone()) {
      this.stop(`parent process ${parent} is gone`);
      return this;
    }
    this.every(intervalMs, () => {
      if (gone()) this.stop(`parent process ${parent} is gone`);
    });
    return this;
  }

  /**
   * Stops the service when another process it depends on is gone: the npm above the shell that `npx` puts
   * between npm and node (SIGHUP ends npm alone, and the shell goes on waiting for node).
   */
  watchProcess(
    pid: number,
    what: string,
    intervalMs = 250,
    exists: (pid: number) => boolean = processExists,
  ): this {
    if (!exists(pid)) {
      this.stop(`${what} ${pid} is gone`);
      return this;
    }
    this.every(intervalMs, () => {
      if (!exists(pid)) this.stop(`${what} ${pid} is gone`);
    });
    return this;
  }

  private every(intervalMs: number, check: () => void): void {
    const timer = setInterval(check, intervalMs);
    timer.unref();
    this.watchTimers.push(timer);
  }

  /** Ends the process with 0 when a stop was asked for before there was an app to close (nothing to undo). */
  exitBeforeStart(): void {
    this.options.logger.log('stopped in 0 ms (before the service had started anything)');
    this.exit(0);
  }

  /** The app to close; closes it at once when a shutdown was asked for before it existed. */
  attach(app: INestApplicationContext): void {
    this.app = app;
    if (this.reason) void this.close(app);
  }

  /** Asks for the shutdown (idempotent). */
  stop(reason: string): void {
    if (this.reason) {
      this.options.logger.log(`${reason}: already shutting down`);
      return;
    }
    this.reason = reason;
    for (const timer of this.watchTimers.splice(0)) clearInterval(timer);
    const grace = this.options.graceMs?.();
    this.options.logger.log(
      `${reason}: shutting down gracefully` +
        (grace !== undefined ? ` (running executions get up to ${grace} ms)` : ''),
    );
    if (this.app) void this.close(this.app);
  }

  private async close(app: INestApplicationContext): Promise<void> {
    const grace = this.options.graceMs?.();
    const deadline = (grace ?? 10_000) + SHUTDOWN_SLACK_MS;
    const watchdog = setTimeout(() => {
      this.options.logger.error(`shutdown did not finish within ${deadline} ms: exiting`);
      this.exit(1);
    }, deadline);
    watchdog.unref();
    // The HTTP server's close waits for every connection: one kept alive by its client after its last response
    // would hold it until the keep-alive timeout (5 s). Close such connections as they fall idle.
    const server = (app as Partial<INestApplication>).getHttpServer?.() as
      { closeIdleConnections?: () => void } | undefined;
    const idle = server?.closeIdleConnections
      ? setInterval(() => server.closeIdleConnections?.(), IDLE_CONNECTIONS_EVERY_MS)
      : undefined;
    idle?.unref();
    const started = Date.now();
    try {
      await app.close();
      clearInterval(idle);
      clearTimeout(watchdog);
      this.options.logger.log(`stopped in ${Date.now() - started} ms`);
      this.exit(0);
    } catch (err) {
      clearInterval(idle);
      clearTimeout(watchdog);
      this.options.logger.error(
        `shutdown failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      this.exit(1);
    }
  }

  /** Removes the signal listeners and the parent watch (tests). */
  dispose(): void {
    for (const [signal, handler] of this.handlers) process.removeListener(signal, handler);
    this.handlers.clear();
    for (const timer of this.watchTimers.splice(0)) clearInterval(timer);
  }
}

/** Whether a process exists (a zombie counts; EPERM: it exists, owned by someone else). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
