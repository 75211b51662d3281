import type { INestApplication, INestApplicationContext, LoggerService } from '@nestjs/common';

export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

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
  private parentTimer?: NodeJS.Timeout;
  private readonly handlers = new Map<string, () => void>();
  private readonly exit: (code: number) => void;

  constructor(private readonly options: ServiceLifecycleOptions) {
    this.exit = options.exit ?? ((code) => process.exit(code));
  }

  /** Whether a shutdown was asked for. */
  get stopping(): boolean {
    return this.reason !== undefined;
  }

  /** Listens to the shutdown signals (from now on: a signal during start-up stops the app once it exists). */
  listen(signals: readonly string[] = SHUTDOWN_SIGNALS): this {
    for (const signal of signals) {
      const handler = () => this.stop(`received ${signal}`);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
    return this;
  }

  /** Stops the service when its parent process changes (the parent died and the process was re-parented). */
  watchParent(intervalMs = 250, ppid: () => number = () => process.ppid): this {
    const parent = ppid();
    this.parentTimer = setInterval(() => {
      if (ppid() !== parent) this.stop(`parent process ${parent} is gone`);
    }, intervalMs);
    this.parentTimer.unref();
    return this;
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
    if (this.parentTimer) clearInterval(this.parentTimer);
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
    if (this.parentTimer) clearInterval(this.parentTimer);
  }
}
