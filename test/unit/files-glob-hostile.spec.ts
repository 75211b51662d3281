/*
 * Collect patterns against hostile names (a hostile review found catastrophic backtracking): the match must stay
 * fast whatever the pattern and the names, since both can come from outside (the caller's pattern, the
 * sandbox's file names) and the match runs on the service's event loop.
 */
import { parseCollect, segmentMatches } from '../../src/container-pool/execution/files/glob';
import { InvalidRequestError } from '../../src/container-pool/errors/container-pool.errors';

describe('collect globs: no catastrophic matching', () => {
  it('many wildcards against a long name that does not match: fast, and right', () => {
    const [glob] = parseCollect(['*a'.repeat(40) + '*b']);
    const started = performance.now();
    expect(glob.matches('a'.repeat(4000))).toBe(false);
    expect(glob.matches('a'.repeat(100) + 'b')).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('chains of ** against a deep path: fast, and right', () => {
    const [glob] = parseCollect(['**/'.repeat(30) + 'z']);
    const deep = Array(2000).fill('a').join('/');
    const started = performance.now();
    expect(glob.matches(deep)).toBe(false);
    expect(glob.matches(`${deep}/z`)).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
    const [mixed] = parseCollect(['**/a*/**/b?/**/*.png']);
    expect(mixed.matches('x/ay/q/r/bz/s/t.png')).toBe(true);
    expect(mixed.matches('x/ay/q/r/bzz/s/t.png')).toBe(false);
  });

  it('segment rules: * and ? within a segment, dotfiles only when named', () => {
    expect(segmentMatches('*.txt', 'a.txt')).toBe(true);
    expect(segmentMatches('*.txt', '.a.txt')).toBe(false);
    expect(segmentMatches('.*', '.env')).toBe(true);
    expect(segmentMatches('a?c', 'abc')).toBe(true);
    expect(segmentMatches('a?c', 'ac')).toBe(false);
    expect(segmentMatches('a*b*c', 'axxbyyc')).toBe(true);
    expect(segmentMatches('a*b*c', 'axxbyy')).toBe(false);
    expect(segmentMatches('é*', 'été')).toBe(true);
  });

  it('a pattern longer than 1024 characters is refused, naming it', () => {
    expect(() => parseCollect(['a'.repeat(1025)])).toThrow(InvalidRequestError);
    expect(() => parseCollect(['a'.repeat(1025)])).toThrow(/1024/);
  });
});
