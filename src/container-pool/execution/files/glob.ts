import { InvalidRequestError } from '../../errors/container-pool.errors';

/** Most patterns of one collect. */
export const MAX_PATTERNS = 100;

/**
 * A collect pattern, relative to the work dir: `*` and `?` match within a segment, `**` (a whole segment)
 * across segments, everything else literally (no braces, no classes). A segment starting with `.` is matched
 * only by a pattern segment that starts with `.` itself: `*` and `**` never match dotfiles.
 */
export class Glob {
  readonly segments: string[];
  private readonly matchers: (RegExp | '**')[];

  constructor(readonly pattern: string) {
    this.segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
    this.matchers = this.segments.map((s) => (s === '**' ? '**' : segmentRegExp(s)));
  }

  /** Deepest path (in segments) it can match; Infinity with `**`. */
  get maxDepth(): number {
    return this.segments.includes('**') ? Infinity : this.segments.length;
  }

  /** Whether it can match a name starting with `.`. */
  get namesDotfiles(): boolean {
    return this.segments.some((s) => s.startsWith('.'));
  }

  /** Whether the relative path (segments joined by `/`) matches. */
  matches(path: string): boolean {
    return matchFrom(this.matchers, 0, path.split('/'), 0);
  }
}

function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (const ch of segment) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  // A leading wildcard never matches a dotfile (as in a shell).
  const guard = segment.startsWith('.') ? '' : '(?!\\.)';
  return new RegExp(`^${guard}${re}$`, 's');
}

function matchFrom(m: (RegExp | '**')[], mi: number, names: string[], ni: number): boolean {
  if (mi === m.length) return ni === names.length;
  const cur = m[mi];
  if (cur === '**') {
    // Zero or more segments, none of them a dotfile.
    for (let k = ni; k <= names.length; k++) {
      if (matchFrom(m, mi + 1, names, k)) return true;
      if (k < names.length && names[k].startsWith('.')) return false;
    }
    return false;
  }
  return ni < names.length && cur.test(names[ni]) && matchFrom(m, mi + 1, names, ni + 1);
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
