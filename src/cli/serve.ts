import 'reflect-metadata';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseEnv } from 'node:util';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module';
import { ContainerPoolService, setupContainerPoolDocs } from '../index';
import { ServiceLifecycle } from './lifecycle';
import { createServiceLogger } from './logger';
import { addServiceProfiles } from './service-profiles';

export function listenAddress(env: NodeJS.ProcessEnv = process.env): {
  host: string;
  port: number;
} {
  const host = env.HOST?.trim() || '127.0.0.1';
  const rawPort = env.PORT?.trim() || '3000';
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port < 0 || port > 65535) {
    throw new Error(`Invalid PORT: must be an integer 0-65535, got "${rawPort}"`);
  }
  return { host, port };
}

/**
 * Whether the service stops when its parent process goes away: `CONTAINER_POOL_EXIT_WITH_PARENT=1|0`; by default
 * on when npm started it (`npm run serve`, `npx container-pool serve`: npm's shell does not pass signals on) or
 * when CONTAINER_POOL_PARENT_PID names the parent.
 */
export function exitWithParent(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CONTAINER_POOL_EXIT_WITH_PARENT?.trim().toLowerCase();
  if (v === '1' || v === 'true' || v === 'yes') return true;
  if (v === '0' || v === 'false' || v === 'no') return false;
  if (v) {
    throw new Error(`Invalid CONTAINER_POOL_EXIT_WITH_PARENT: must be 1 or 0, got "${v}"`);
  }
  return Boolean(env.npm_lifecycle_event) || Boolean(env.CONTAINER_POOL_PARENT_PID?.trim());
}

/**
 * The parent the service must have: CONTAINER_POOL_PARENT_PID (`npm run serve` sets it to the process that
 * started the script, node's parent once the script has exec'd it); undefined when unset.
 */
export function parentPid(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.CONTAINER_POOL_PARENT_PID?.trim();
  if (!v) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new Error(`Invalid CONTAINER_POOL_PARENT_PID: must be a process id, got "${v}"`);
  }
  return Number(v);
}

/**
 * Loads `path` (default `./.env`) into `env` when it exists, with Node's own parser (that of
 * `process.loadEnvFile`): a variable already set, even to an empty value, keeps its value (as @nestjs/config's
 * ConfigModule did). Returns whether it was read.
 */
export function loadDotEnv(path = '.env', env: NodeJS.ProcessEnv = process.env): boolean {
  if (!existsSync(path) || !statSync(path).isFile()) return false;
  for (const [name, value] of Object.entries(parseEnv(readFileSync(path, 'utf8')))) {
    if (value !== undefined && !Object.prototype.hasOwnProperty.call(env, name)) env[name] = value;
  }
  return true;
}

const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ash', 'ksh', 'busybox']);

/** comm and parent pid of a process from /proc (Linux), or undefined. */
function procStat(pid: number): { comm: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    return {
      comm: stat.slice(stat.indexOf('(') + 1, close),
      ppid: Number(stat.slice(close + 2).split(' ')[1]),
    };
  } catch {
    return undefined;
  }
}

/**
 * When the parent is a shell (`npx` runs `npm exec` -> `sh -c` -> node), the nearest ancestor that is not one:
 * npm. Undefined when the parent is no shell (its watch covers it) or where /proc cannot tell.
 */
export function launcherAbove(
  ppid: number = process.ppid,
  stat: (pid: number) => { comm: string; ppid: number } | undefined = procStat,
): number | undefined {
  let pid = ppid;
  for (let depth = 0; depth < 8; depth++) {
    const s = stat(pid);
    if (!s) return undefined;
    if (!SHELLS.has(s.comm)) return pid === ppid ? undefined : pid;
    if (s.ppid <= 1) return undefined;
    pid = s.ppid;
  }
  return undefined;
}

/** The HTTP platform Nest would load, or a message saying how to install it. */
export function missingHttpPlatform(): string | undefined {
  let from: string[] | undefined;
  try {
    from = [dirname(require.resolve('@nestjs/core'))];
  } catch {
    from = undefined;
  }
  try {
    require.resolve('@nestjs/platform-express', from ? { paths: from } : undefined);
    return undefined;
  } catch {
    return (
      '`container-pool serve` needs @nestjs/platform-express (an optional peer dependency of container-pool): ' +
      'npm install @nestjs/platform-express@<the major of your @nestjs/core, 11 or 12>'
    );
  }
}

/**
 * The runnable service: the pool's module with settings from the environment and `./.env`, its admin API,
 * health, metrics and OpenAPI docs on HOST:PORT (default 127.0.0.1:3000); JSON logs unless on a terminal.
 * Stops gracefully on SIGTERM, SIGINT, SIGHUP and, when watching it, when its parent process goes away.
 */
export async function serve(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  // Before anything reads a setting: HOST, PORT and LOG_* may come from .env too.
  const dotEnv = loadDotEnv('.env', env);
  const logger = createServiceLogger(env);
  Logger.overrideLogger(logger);
  const log = new Logger('Main');
  if (dotEnv) log.log('settings from ./.env too (the environment wins over it)');
  const { host, port } = listenAddress(env);
  const missing = missingHttpPlatform();
  if (missing) throw new Error(missing);
  // Before the module reads the POOL_* settings: the datascience profile is settings of the environment.
  const added = addServiceProfiles(env);
  if (added.profiles.length) {
    log.log(
      `profiles ${added.profiles.join(', ')} (POOL_PROFILES is unset; CONTAINER_POOL_DATASCIENCE=0 leaves ` +
        `datascience out), image ${env.POOL_PROFILE__DATASCIENCE__IMAGE} for datascience`,
    );
  } else if (added.skipped) log.log(`no datascience profile: ${added.skipped}`);

  const started: { pool?: ContainerPoolService } = {};
  const lifecycle = new ServiceLifecycle({
    logger: new Logger('Lifecycle'),
    graceMs: () => started.pool?.options.shutdownGraceMs,
  }).listen();
  if (exitWithParent(env)) {
    const parent = parentPid(env);
    lifecycle.watchParent(undefined, undefined, parent);
    // Started by npm through a shell (npx): npm may end alone (SIGHUP) and leave the shell waiting for node.
    const npm = env.npm_lifecycle_event && parent === undefined ? launcherAbove() : undefined;
    if (npm !== undefined) lifecycle.watchProcess(npm, 'npm process');
  }
  // A signal while loading, or a parent gone before it: nothing was started, nothing to undo.
  if (lifecycle.stopping) return lifecycle.exitBeforeStart();

  // No app-wide body parser: the pool's routes parse their JSON themselves, with POOL_MAX_BODY_BYTES.
  const app = await NestFactory.create(AppModule, { bodyParser: false, logger });
  started.pool = app.get(ContainerPoolService);
  lifecycle.attach(app);
  if (lifecycle.stopping) return;
  (app.getHttpAdapter().getInstance() as { disable?: (setting: string) => void }).disable?.(
    'x-powered-by',
  );
  const docs = setupContainerPoolDocs(app, 'docs');
  await app.listen(port, host);
  if (lifecycle.stopping) return;
  log.log(`container-pool service listening on http://${host}:${port} (pid ${process.pid})`);
  // Without @nestjs/swagger, setupContainerPoolDocs has said so itself.
  if (docs) log.log(`API docs at http://${host}:${port}/docs (JSON at /docs-json)`);
}

/** serve(), exiting with 1 and one log line when it cannot start. */
export function runService(env: NodeJS.ProcessEnv = process.env): void {
  serve(env).catch((err: unknown) => {
    new Logger('Main').error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
