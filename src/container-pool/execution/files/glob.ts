import { InvalidRequestError } from '../../errors/container-pool.errors';

/** Most patterns of one collect. */
export const MAX_PATTERNS = 100;

/** Longest pattern. */
export const MAX_PATTERN_LENGTH = 1024;

/**
 * A collect pattern, relative to the work dir: `*` and `?` match within a segment, `**` (a whole segment)
 * across segments, everything else literally (no braces, no classes). A segment starting with `.` is matched
 * only by a pattern segment that starts with `.` itself: `*` and `**` never match dotfiles.
 */
export class Glob {
  readonly segments: string[];
  /** The segments to match, consecutive `**` collapsed into one (they match the same). */
  private readonly parts: string[];

  constructor(readonly pattern: string) {
    this.segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
    this.parts = this.segments.filter((s, i, all) => !(s === '**' && all[i - 1] === '**'));
  }

  /** Deepest path (in segments) it can match; Infinity with `**`. */
  get maxDepth(): number {
    return this.segments.includes('**') ? Infinity : this.segments.length;
  }

  /** Whether it can match a name starting with `.`. */
  get namesDotfiles(): boolean {
    return this.segments.some((s) => s.startsWith('.'));
  }

  /**
   * Whether the relative path (segments joined by `/`) matches. Linear in the names for each part (the names
   * come from the sandbox): each segment by a two-pointer wildcard match, `**` by a memoized walk, never a
   * backtracking regular expression.
   */
  matches(path: string): boolean {
    const names = path.split('/');
    const parts = this.parts;
    // memo[mi][ni]: whether parts[mi..] match names[ni..] (undefined: not known yet).
    const memo = parts.map(() => new Array<boolean | undefined>(names.length + 1));
    const from = (mi: number, ni: number): boolean => {
      if (mi === parts.length) return ni === names.length;
      const known = memo[mi][ni];
      if (known !== undefined) return known;
      let ok = false;
      if (parts[mi] === '**') {
        // Zero or more segments, none of them a dotfile.
        for (let k = ni; k <= names.length && !ok; k++) {
          if (from(mi + 1, k)) ok = true;
          else if (k < names.length && names[k].startsWith('.')) break;
        }
      } else {
        ok = ni < names.length && segmentMatches(parts[mi], names[ni]) && from(mi + 1, ni + 1);
      }
      memo[mi][ni] = ok;
      return ok;
    };
    return from(0, 0);
  }
}

/**
 * `*` (any run) and `?` (one character) within one segment, everything else literal; a leading wildcard never
 * matches a dotfile (as in a shell). The classic two-pointer match: O(pattern x name) at worst, no backtracking
 * blow-up.
 */
export function segmentMatches(pattern: string, name: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.')) return false;
  const p = [...pattern];
  const n = [...name];
  let pi = 0;
  let ni = 0;
  let star = -1;
  let mark = 0;
  while (ni < n.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === n[ni]))) {
      pi++;
      ni++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ni;
    } else if (star >= 0) {
      pi = star + 1;
      ni = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** Checks the `collect` patterns of a run. */
export function parseCollect(collect: unknown): Glob[] {
  if (!Array.isArray(collect))
    throw new InvalidRequestError('collect', 'must be an array of glob patterns');
  if (collect.length > MAX_PATTERNS) {
    throw new InvalidRequestError('collect', `must not have more than ${MAX_PATTERNS} patterns`);
  }
  return collect.map((p, i) => {
    const field = `collect[${i}]`;
    if (typeof p !== 'string' || p === '') {
      throw new InvalidRequestError(field, 'must be a non-empty string');
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(p)) {
      throw new InvalidRequestError(field, 'must not contain control characters or NUL');
    }
    if (p.length > MAX_PATTERN_LENGTH) {
      throw new InvalidRequestError(
        field,
        `must not be longer than ${MAX_PATTERN_LENGTH} characters`,
      );
    }
    if (p.startsWith('/')) {
      throw new InvalidRequestError(field, `${JSON.stringify(p)} must be relative to the work dir`);
    }
    const g = new Glob(p);
    if (g.segments.includes('..')) {
      throw new InvalidRequestError(field, `${JSON.stringify(p)} must not contain ".."`);
    }
    if (!g.segments.length) throw new InvalidRequestError(field, 'must name files');
    return g;
  });
}
