import {
  ContainerCreateError,
  ContainerLostError,
  ContainerPoolError,
  EngineUnavailableError,
  ImageUnavailableError,
  InvalidRequestError,
  SandboxUnsupportedError,
} from '../../errors/container-pool.errors';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EACCES',
  'ESOCKETTIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_SOCKET',
]);

export interface DockerLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string } | null;
  reason?: string;
}

export function statusOf(err: unknown): number | undefined {
  return (err as DockerLikeError | undefined)?.statusCode;
}

/** The engine's own message when there is one. */
export function describe(err: unknown): string {
  const e = err as DockerLikeError | undefined;
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  const text = fromJson ?? e?.message ?? String(err);
  return text.replace(/^\(HTTP code \d+\)\s*[\w ]*-\s*/, '').trim();
}

export function isConnectionError(err: unknown): boolean {
  const e = err as DockerLikeError | undefined;
  if (!e) return false;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  return /socket hang up|connect ECONNREFUSED|ENOENT.*docker\.sock|Timeout|timed out/i.test(
    e.message ?? '',
  );
}

/** Maps an error from a call about the engine in general. */
export function toEngineError(err: unknown, what: string): ContainerPoolError {
  if (err instanceof ContainerPoolError) return err;
  return new EngineUnavailableError(`${what} failed: ${describe(err)}`, { cause: err });
}

/** Maps an error from create/attach/start. */
export function toCreateError(err: unknown, image: string): ContainerPoolError {
  if (err instanceof ContainerPoolError) return err;
  const status = statusOf(err);
  const message = describe(err);
  if (isConnectionError(err) && status === undefined) {
    return new EngineUnavailableError(`creating a container failed: ${message}`, { cause: err });
  }
  if (status === 404 && /image/i.test(message)) {
    return new ImageUnavailableError(image, message, { cause: err });
  }
  // Only what no retry can fix: a bad request, an unknown runtime, a seccomp profile the engine rejects.
  // "OCI runtime create failed: ..." is runc failing this once (e.g. EAGAIN): retryable, not pool-wide.
  if (status === 400 || /unknown or invalid runtime|unknown runtime|seccomp/i.test(message)) {
    return new SandboxUnsupportedError(message, { cause: err });
  }
  if (status !== undefined && status >= 500 && /connection refused|cannot connect/i.test(message)) {
    return new EngineUnavailableError(message, { cause: err });
  }
  return new ContainerCreateError(message, { cause: err });
}

/** Maps an error from a call about one running container (exec, inspect). */
export function toContainerError(err: unknown, name: string, what: string): ContainerPoolError {
  if (err instanceof ContainerPoolError) return err;
  const status = statusOf(err);
  if (status === 404) {
    return new ContainerLostError(name, `${what}: the container no longer exists`, { cause: err });
  }
  if (status === 409) {
    return new ContainerLostError(name, `${what}: the container is not running`, { cause: err });
  }
  if (status === undefined && isConnectionError(err)) {
    return new EngineUnavailableError(`${what} on ${name} failed: ${describe(err)}`, {
      cause: err,
    });
  }
  return new ContainerLostError(name, `${what} failed: ${describe(err)}`, { cause: err });
}

/**
 * The typed error of an exec the engine could not start, from runc's message (e.g. `exec: "nosuch": executable
 * file not found in $PATH`, `chdir to cwd ("/x") set in config.json failed: no such file or directory`).
 */
export function notStarted(
  output: { stdout: Buffer; stderr: Buffer },
  containerName: string,
): ContainerPoolError {
  const text = Buffer.concat([output.stdout, output.stderr]).toString('utf8').slice(0, 2000);
  const reason =
    /unable to start container process: (.*?)(?:: unknown)?\s*$/m.exec(text)?.[1] ??
    (text.trim() || 'the engine did not start it');
  if (/chdir to cwd/.test(reason)) {
    return new InvalidRequestError(
      'workdir',
      `the engine could not enter it (${reason.replace(/ set in config\.json failed/, '')}); it must be an ` +
        'existing directory of the container',
    );
  }
  // The program itself: missing, not executable, not a program. Anything else (no pid left, no memory, runc
  // failing) is the container's state, not the request's.
  if (
    /^exec: .*(not found|no such file|permission denied|is a directory|exec format error|not a directory)/i.test(
      reason,
    )
  ) {
    return new InvalidRequestError(
      'cmd[0]',
      `the engine could not start the program (${reason}); name an executable of the image, by path or on PATH`,
    );
  }
  return new ContainerLostError(
    containerName,
    `the engine could not start a program in it (${reason}); the container is unusable`,
  );
}
