import { InvalidRequestError } from '../../errors/container-pool.errors';

/** The directories file work is confined to: the work dir and /tmp. */
export const TMP_ROOT = '/tmp';
const MAX_PATH = 4096;
const MAX_NAME = 255;
// Control characters (newline, escape, ...) make names that logs and listings cannot show: refused.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A path checked on the host: absolute, normalized, inside the work dir or /tmp (by its text). */
export interface ConfinedPath {
  /** Absolute and normalized (no `.`, no `//`, no trailing `/`). */
  abs: string;
  /** As results name it: relative to the work dir when inside it, else absolute. */
  shown: string;
}

const isUnder = (abs: string, root: string) => abs === root || abs.startsWith(`${root}/`);

/**
 * Checks a path given by the caller (relative to the work dir, or absolute inside the work dir or /tmp) and
 * normalizes it. `..` segments are refused whatever they lead to, and so are NUL and control characters. The
 * container checks again, after resolving symlinks as the sandbox user.
 */
export function confinePath(
  field: string,
  path: unknown,
  workdir: string,
  opts: { allowRoot?: boolean } = {},
): ConfinedPath {
  if (typeof path !== 'string' || path === '') {
    throw new InvalidRequestError(field, 'must be a non-empty string');
  }
  const quoted = JSON.stringify(path);
  if (CONTROL.test(path)) {
    throw new InvalidRequestError(field, `${quoted} must not contain control characters or NUL`);
  }
  if (Buffer.byteLength(path) > MAX_PATH) {
    throw new InvalidRequestError(field, `must not be longer than ${MAX_PATH} bytes`);
  }
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw new InvalidRequestError(field, `${quoted} must not contain ".."`);
  }
  for (const s of segments) {
    if (Buffer.byteLength(s) > MAX_NAME) {
      throw new InvalidRequestError(field, `${quoted} has a name longer than ${MAX_NAME} bytes`);
    }
  }
  const root = workdir.replace(/\/+$/, '') || '/';
  const abs = path.startsWith('/')
    ? `/${segments.join('/')}`
    : `${root === '/' ? '' : root}/${segments.join('/')}`.replace(/\/$/, '') || '/';
  if (!isUnder(abs, root) && !isUnder(abs, TMP_ROOT)) {
    throw new InvalidRequestError(
      field,
      `${quoted} is outside the work dir (${root}) and ${TMP_ROOT}`,
    );
  }
  if (!opts.allowRoot && (abs === root || abs === TMP_ROOT)) {
    throw new InvalidRequestError(field, `${quoted} must name a file inside ${abs}`);
  }
  const shown = isUnder(abs, root) && abs !== root ? abs.slice(root.length + 1) : abs;
  return { abs, shown: root === '/' ? abs : shown };
}

/** `dir`'s entry `name`, named as `dir` was. */
export function joinShown(dir: ConfinedPath, name: string, workdir: string): string {
  const root = workdir.replace(/\/+$/, '') || '/';
  if (dir.abs === root) return name;
  return `${dir.shown}/${name}`;
}
