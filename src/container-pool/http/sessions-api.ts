import { ADMIN_IDENTITY, AdminIdentity } from './guards/admin-token.guard';
import { httpError, invalidRequest } from './http-errors';

/** The caller as the guard left it (every session route is guarded, so it is there). */
export function callerOf(req: { [ADMIN_IDENTITY]?: AdminIdentity }): AdminIdentity {
  const caller = req[ADMIN_IDENTITY];
  // Unreachable behind AdminTokenGuard; refuse rather than act for nobody.
  if (!caller) throw httpError(401, 'UNAUTHORIZED', 'Missing bearer token.');
  return caller;
}

/**
 * The owner whose sessions the caller may reach: its token's fingerprint, or any (undefined) for the admin
 * scope. Another caller's session is then SessionNotFoundError (404), never 403: its existence does not leak.
 */
export function reachableOwner(caller: AdminIdentity): string | undefined {
  return caller.scope === 'admin' ? undefined : caller.tokenFingerprint;
}

const MAX_FILE_PATH = 4096;

/**
 * The relative path of `.../files/*path`: Express 5 gives the wildcard as an array of decoded segments. A segment
 * that is empty (`a//b`), `.` or `..` (also as `%2E%2E`), that holds a `/` (a decoded `%2F`) or NUL, is a 400
 * naming `path`: the segments are joined with `/` only once each is one plain name, so the path stays inside the
 * work dir whatever the library checks after.
 */
export function sessionFilePath(param: unknown): string {
  const refuse = (message: string) => invalidRequest([{ field: 'path', message }]);
  const segments: unknown[] = Array.isArray(param) ? param : [param];
  if (!segments.length) throw refuse('path must name a file under the work dir');
  for (const s of segments) {
    if (typeof s !== 'string' || s === '') {
      throw refuse('path must not have empty segments (a//b or a trailing /)');
    }
    if (s === '.' || s === '..') throw refuse('path must not have "." or ".." segments');
    if (s.includes('/')) throw refuse('path segments must not contain "/" (%2F)');
    if (s.includes('\0')) throw refuse('path must not contain NUL');
  }
  const path = segments.join('/');
  if (path.length > MAX_FILE_PATH) {
    throw refuse(`path must not be longer than ${MAX_FILE_PATH} characters`);
  }
  return path;
}
