import type { DriverExecRequest } from '../../src/container-pool/engine/container-driver.interface';
import {
  ContainerLostError,
  InvalidRequestError,
  PoolShuttingDownError,
} from '../../src/container-pool/errors/container-pool.errors';
import { parseRecords } from '../../src/container-pool/execution/files/file-ops';
import { normalizeRunFiles } from '../../src/container-pool/execution/files/file-request';
import { Glob, parseCollect } from '../../src/container-pool/execution/files/glob';
import { confinePath } from '../../src/container-pool/execution/files/paths';
import { TarParser, tarOf } from '../../src/container-pool/execution/files/tar';
import { hangingExec } from '../support/fake-driver';
import { useFakePools, waitFor } from '../support/pool-testing';

const limits = { workdir: '/workspace', maxFiles: 3, maxFileBytes: 10, maxFilesTotalBytes: 15 };
const problem = (fn: () => unknown): { field: string; message: string } => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidRequestError);
    return { field: (err as InvalidRequestError).field, message: (err as Error).message };
  }
  throw new Error('no error');
};

describe('file paths (host-side rules)', () => {
  it.each([
    ['a.txt', '/workspace/a.txt', 'a.txt'],
    ['./out//b/./c.png', '/workspace/out/b/c.png', 'out/b/c.png'],
    ['/workspace/x', '/workspace/x', 'x'],
    ['/tmp/y', '/tmp/y', '/tmp/y'],
    ['/tmp//z/', '/tmp/z', '/tmp/z'],
  ])('%j is %s', (path, abs, shown) => {
    expect(confinePath('path', path, '/workspace')).toEqual({ abs, shown });
  });

  it.each([
    ['/etc/passwd', /"\/etc\/passwd" is outside the work dir \(\/workspace\) and \/tmp/],
    ['/workspacex/a', /outside the work dir/],
    ['/tmpx', /outside the work dir/],
    ['..', /must not contain "\.\."/],
    ['a/../../b', /must not contain "\.\."/],
    ['/tmp/../etc/x', /must not contain "\.\."/],
    ['a\0b', /control characters or NUL/],
    ['a\nb', /control characters or NUL/],
    ['', /non-empty string/],
    ['.', /must name a file inside \/workspace/],
    ['/tmp', /must name a file inside \/tmp/],
    ['x'.repeat(256), /name longer than 255 bytes/],
    [`${'a/'.repeat(2100)}b`, /longer than 4096 bytes/],
  ])('refuses %j', (path, text) => {
    const p = problem(() => confinePath('files[2].path', path, '/workspace'));
    expect(p.field).toBe('files[2].path');
    expect(p.message).toMatch(text);
  });

  it('refuses a non-string', () => {
    expect(problem(() => confinePath('path', 42, '/workspace')).message).toMatch(
      /non-empty string/,
    );
  });

  it('allows the root itself where asked (list)', () => {
    expect(confinePath('dir', '.', '/workspace', { allowRoot: true }).abs).toBe('/workspace');
  });
});

describe('collect globs', () => {
  const m = (pattern: string, path: string) => new Glob(pattern).matches(path);

  it.each([
    ['*.png', 'a.png', true],
    ['*.png', 'out/a.png', false],
    ['out/*.png', 'out/a.png', true],
    ['out/?.png', 'out/a.png', true],
    ['out/?.png', 'out/ab.png', false],
    ['out/**/*.png', 'out/a.png', true],
    ['out/**/*.png', 'out/x/y/z.png', true],
    ['**', 'a/b/c', true],
    ['**/c', 'c', true],
    ['a/**', 'a/b', true],
    ['*', '.hidden', false],
    ['.*', '.hidden', true],
    ['**/*.png', '.cache/a.png', false],
    ['**/*.png', 'x/.cache/a.png', false],
    ['.cache/*.png', '.cache/a.png', true],
    ['out/.*', 'out/.e', true],
    ['{a,b}.txt', 'a.txt', false],
    ['{a,b}.txt', '{a,b}.txt', true],
    ['[ab].txt', 'a.txt', false],
    ['a+b(c).txt', 'a+b(c).txt', true],
    ['*.txt', 'x.txt.bak', false],
  ])('%j matches %j: %s', (pattern, path, expected) => {
    expect(m(pattern, path)).toBe(expected);
  });

  it('knows how deep to scan and whether dotfiles are named', () => {
    expect(new Glob('out/*.png').maxDepth).toBe(2);
    expect(new Glob('out/**/x').maxDepth).toBe(Infinity);
    expect(new Glob('out/*').namesDotfiles).toBe(false);
    expect(new Glob('out/.x*').namesDotfiles).toBe(true);
  });

  it.each([
    [['/etc/*'], 'collect[0]', /must be relative to the work dir/],
    [['a', '../x'], 'collect[1]', /must not contain "\.\."/],
    [['a\nb'], 'collect[0]', /control characters/],
    [[''], 'collect[0]', /non-empty string/],
    [['./'], 'collect[0]', /must name files/],
    ['*.png', 'collect', /must be an array/],
    [Array.from({ length: 101 }, () => '*'), 'collect', /more than 100 patterns/],
  ])('refuses %j', (collect, field, text) => {
    const p = problem(() => parseCollect(collect));
    expect(p.field).toBe(field);
    expect(p.message).toMatch(text);
  });
});

describe('run files against the caps', () => {
  it('accepts files within every cap, strings as UTF-8, with default mode 0644', () => {
    const r = normalizeRunFiles(
      {
        files: [
          { path: 'a', content: 'é' },
          { path: '/tmp/b', content: Buffer.alloc(10), mode: 0o600 },
          { path: 'c', content: new Uint8Array([1, 2]) },
        ],
      },
      limits,
    );
    expect(r.files.map((f) => [f.path.abs, f.content.length, f.mode])).toEqual([
      ['/workspace/a', 2, 0o644],
      ['/tmp/b', 10, 0o600],
      ['/workspace/c', 2, 0o644],
    ]);
    expect(r.collect).toBeNull();
  });

  it.each([
    [
      { files: [1, 2, 3, 4].map((i) => ({ path: `f${i}`, content: '' })) },
      'files',
      /4 files, above maxFiles \(3\)/,
    ],
    [
      { files: [{ path: 'a', content: Buffer.alloc(11) }] },
      'files[0].content',
      /11 bytes, above maxFileBytes \(10\)/,
    ],
    [
      {
        files: [
          { path: 'a', content: Buffer.alloc(10) },
          { path: 'b', content: Buffer.alloc(6) },
        ],
      },
      'files',
      /above maxFilesTotalBytes \(15\)/,
    ],
    [
      {
        files: [
          { path: 'a', content: '' },
          { path: './a', content: '' },
        ],
      },
      'files[1].path',
      /given twice/,
    ],
    [
      { files: [{ path: 'a', content: 5 }] },
      'files[0].content',
      /string, a Buffer or a Uint8Array/,
    ],
    [{ files: [{ path: 'a', content: '', mode: 0o4755 }] }, 'files[0].mode', /from 0 to 0o777/],
    [{ files: [{ path: 'a', content: '', mode: 1.5 }] }, 'files[0].mode', /integer/],
    [{ files: [null] }, 'files[0]', /must be an object/],
    [{ files: 'a' }, 'files', /must be an array/],
  ])('refuses %j', (request, field, text) => {
    const p = problem(() => normalizeRunFiles(request, limits));
    expect(p.field).toBe(field);
    expect(p.message).toMatch(text);
  });
});

describe('tar (host side)', () => {
  it('round-trips members, keeps only what is wanted within the budget, in any chunking', () => {
    const a = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const b = Buffer.alloc(0);
    const c = Buffer.alloc(1000, 7);
    const archive = tarOf([
      { name: '0', content: a },
      { name: '1', content: b },
      { name: '2', content: c },
    ]);
    expect(archive.length % 512).toBe(0);
    for (const chunk of [1, 7, 512, 100_000]) {
      const p = new TarParser((name) => name !== '2', 300);
      for (let i = 0; i < archive.length; i += chunk) p.write(archive.subarray(i, i + chunk));
      expect(p.complete).toBe(true);
      expect(p.members.map((m) => [m.name, m.type, m.size, m.content?.length ?? null])).toEqual([
        ['0', '0', 256, 256],
        ['1', '0', 0, 0],
        ['2', '0', 1000, null],
      ]);
      expect(p.members[0].content!.equals(a)).toBe(true);
    }
    // Over the budget: counted, not kept.
    const small = new TarParser(() => true, 100);
    small.write(archive);
    expect(small.members.map((m) => m.content?.length ?? null)).toEqual([null, 0, null]);
  });
});

describe('listing records', () => {
  it('parses names with spaces and newlines, and tells a cut stream', () => {
    const tok = '<t>';
    const out = Buffer.from(`81a4 3 <t>./a b<t>\n41ed 60 <t>./x\ny<t>\n81a4 1 <t>./cu`);
    const { records, cut } = parseRecords(out, tok);
    expect(records).toEqual([
      { mode: 0o100644, size: 3, name: './a b' },
      { mode: 0o40755, size: 60, name: './x\ny' },
    ]);
    expect(cut).toBe(true);
    expect(parseRecords(Buffer.from('81a4 3 <t>./a<t>\n'), tok).cut).toBe(false);
  });
});

describe('run({ files, collect }) on the fake driver', () => {
  const start = useFakePools();

  it('refuses a request beyond a cap before acquiring or running anything', async () => {
    const { pool, driver } = await start({ size: 0, maxFiles: 1 });
    await pool.initialize();
    const execs: DriverExecRequest[] = [];
    driver.execBehaviour = (req) => {
      execs.push(req);
      return {
        exitCode: 0,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        truncated: false,
        aborted: false,
      };
    };
    await expect(
      pool.run({
        cmd: ['true'],
        files: [
          { path: 'a', content: '' },
          { path: 'b', content: '' },
        ],
      }),
    ).rejects.toThrow(/above maxFiles \(1\)/);
    await expect(pool.run({ cmd: ['true'], collect: ['../x'] })).rejects.toThrow(
      InvalidRequestError,
    );
    expect(driver.created).toHaveLength(0);
    expect(execs).toHaveLength(0);
  });

  it('writes the files as the sandbox user in one exec before the program, collects after it', async () => {
    const { pool, driver } = await start({ size: 0 });
    await pool.initialize();
    const execs: DriverExecRequest[] = [];
    driver.execBehaviour = (req) => {
      execs.push(req);
      return {
        exitCode: 0,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        truncated: false,
        aborted: false,
      };
    };
    const r = await pool.run({
      cmd: ['prog'],
      files: [{ path: 'in.csv', content: 'a,b' }],
      collect: ['*.png'],
    });
    // The helper's file ops and the program, all as the sandbox user.
    expect(execs.map((e) => [e.cmd.includes('prog') ? 'prog' : e.cmd[9], e.user])).toEqual([
      ['write', '65534:65534'],
      ['prog', '65534:65534'],
      ['scan', '65534:65534'],
    ]);
    expect(execs[0].stdin!.length % 512).toBe(0);
    expect(r).toMatchObject({ exitCode: 0, files: [], filesTruncated: false });
  });

  it('maps a refusal of the helper to InvalidRequestError naming the file', async () => {
    const { pool, driver } = await start({ size: 0 });
    await pool.initialize();
    driver.execBehaviour = () => ({
      exitCode: 3,
      stdout: Buffer.alloc(0),
      stderr: Buffer.from('CPOOL:OUTSIDE:1\n'),
      truncated: false,
      aborted: false,
    });
    const err: unknown = await pool
      .run({
        cmd: ['true'],
        files: [
          { path: 'a', content: '' },
          { path: 'l/b', content: '' },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ field: 'files[1].path' });
    expect((err as Error).message).toMatch(/"l\/b" leads outside the work dir and \/tmp/);
  });
});

describe('container.files on the fake driver: a file operation is an execution the pool can stop', () => {
  const start = useFakePools();

  it('fails with ContainerLostError when the container dies under it, and the container is dropped', async () => {
    const { pool, driver } = await start({ size: 0 });
    await pool.initialize();
    const c = await pool.acquire();
    driver.execBehaviour = hangingExec;
    const read = c.files.read('a.txt').catch((e: unknown) => e);
    await waitFor(() => driver.containers.get(c.id) !== undefined);
    driver.containers.get(c.id)!.die('killed outside');
    expect(await read).toBeInstanceOf(ContainerLostError);
    await waitFor(() => !driver.containers.has(c.id));
    pool.release(c);
  });

  it('is stopped by shutdown like an execution (PoolShuttingDownError), its container removed', async () => {
    const { pool, driver } = await start({ size: 0, shutdownGraceMs: 0 });
    await pool.initialize();
    const c = await pool.acquire();
    driver.execBehaviour = hangingExec;
    const list = c.files.list('.').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await pool.shutdown();
    expect(await list).toBeInstanceOf(PoolShuttingDownError);
    expect(driver.containers.has(c.id)).toBe(false);
  });

  it('refuses after release (ContainerReleasedError) and checks its arguments first', async () => {
    const { pool } = await start({ size: 0, maxFileBytes: 8 });
    await pool.initialize();
    const c = await pool.acquire();
    await expect(c.files.write('a', Buffer.alloc(9))).rejects.toThrow(
      /9 bytes, above maxFileBytes \(8\)/,
    );
    await expect(c.files.read('a', { maxBytes: 9 })).rejects.toThrow(
      /maxBytes: must not be greater than maxFileBytes \(8\)/,
    );
    await expect(c.files.list('.', { maxEntries: 0 })).rejects.toThrow(/positive integer/);
    await expect(c.files.write('a', 'x', { mode: 0o1777 })).rejects.toThrow(/from 0 to 0o777/);
    await expect(c.files.remove('/tmp')).rejects.toThrow(/must name a file inside \/tmp/);
    pool.release(c);
    await expect(c.files.read('a')).rejects.toMatchObject({ code: 'CONTAINER_RELEASED' });
  });
});
