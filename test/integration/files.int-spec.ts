import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  FileOperationError,
  InvalidRequestError,
} from '../../src/container-pool/errors/container-pool.errors';
import type { Container } from '../../src/container-pool/interfaces/container.interface';
import {
  BUSYBOX_IMAGE,
  expectNoContainersLeft,
  SANDBOX_IMAGE,
  TRANSPORTS,
  startPool,
} from '../support/integration';

const MiB = 1024 * 1024;
const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const sh = (c: Container, script: string) => c.execute(['sh', '-c', script]);

/** Files in and out of a run and of a leased container, on the real engine, with both images. */
describe.each([
  ['python image, transport exec', SANDBOX_IMAGE, 'exec'],
  ['python image, transport runner', SANDBOX_IMAGE, 'runner'],
  // Busybox has no Python: exec only.
  ['busybox image, transport exec', BUSYBOX_IMAGE, 'exec'],
] as const)('files (%s)', (_label, image, transport) => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      image,
      size: 1,
      maxContainers: 3,
      memoryBytes: '512m',
      tmpSizeBytes: '96m',
      workdirSizeBytes: '96m',
      maxFiles: 5,
      maxFileBytes: 11 * MiB,
      maxFilesTotalBytes: 12 * MiB,
      execTimeoutMs: 20_000,
      transport,
    }));
    await pool.initialize();
    expect(pool.stats().transport).toBe(transport);
  });

  afterAll(async () => {
    await app?.close();
    await expectNoContainersLeft(name);
  });

  describe('container.files', () => {
    let c: Container;
    beforeEach(async () => {
      c = await pool.acquire();
    });
    afterEach(() => pool.release(c));

    it('round-trips every byte value, an empty file and a 10 MiB file', async () => {
      await c.files.write('bytes.bin', everyByte);
      expect((await c.files.read('bytes.bin')).equals(everyByte)).toBe(true);
      await c.files.write('/tmp/empty', Buffer.alloc(0));
      expect((await c.files.read('/tmp/empty')).length).toBe(0);
      const big = Buffer.alloc(10 * MiB);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
      await c.files.write('deep/er/big.bin', big);
      expect((await c.files.read('deep/er/big.bin')).equals(big)).toBe(true);
      // What the program sees: the same bytes, the sandbox user's, mode 0644.
      const r = await sh(
        c,
        'od -An -tx1 bytes.bin | tr -d " \\n" | head -c 32; echo; ls -ln deep/er/big.bin',
      );
      expect(r.stdout).toMatch(
        /^000102030405060708090a0b0c0d0e0f\n-rw-r--r-- +1 65534 +65534 +10485760 /,
      );
    });

    it('writes atomically over an existing file, with the mode asked, and a string as UTF-8', async () => {
      await c.files.write('a.txt', 'first');
      await c.files.write('a.txt', 'zweite Fassung ✓', { mode: 0o600 });
      expect((await c.files.read('a.txt')).toString()).toBe('zweite Fassung ✓');
      const r = await sh(c, 'stat -c %a a.txt; ls -a');
      expect(r.stdout.split('\n')[0]).toBe('600');
      expect(r.stdout).not.toMatch(/cpool-in/);
    });

    it('lists a directory with types, sizes and modes, and removes files and directories', async () => {
      await sh(
        c,
        'mkdir -p d/sub && printf abc > d/f && ln -s f d/link && mkfifo d/fifo && chmod 700 d/sub',
      );
      const l = await c.files.list('d');
      expect(l.truncated).toBe(false);
      expect(l.entries).toEqual([
        { name: 'f', path: 'd/f', type: 'file', size: 3, mode: 0o644 },
        { name: 'fifo', path: 'd/fifo', type: 'other', size: 0, mode: 0o644 },
        { name: 'link', path: 'd/link', type: 'symlink', size: 1, mode: 0o777 },
        { name: 'sub', path: 'd/sub', type: 'dir', size: expect.any(Number), mode: 0o700 },
      ]);
      await c.files.remove('d/link');
      expect((await sh(c, 'cat d/f; ls d')).stdout).toBe('abcf\nfifo\nsub\n');
      await c.files.remove('d');
      await c.files.remove('d'); // absent is fine
      expect((await sh(c, 'ls -A')).stdout).not.toMatch(/^d$/m);
    });

    it('refuses paths outside the work dir and /tmp, `..`, and symlinks planted to lead out', async () => {
      await sh(
        c,
        'ln -s /etc etc; ln -s /etc/passwd pw; mkdir -p in; ln -s in inlink; ln -s ../in up',
      );
      const refused = async (p: Promise<unknown>, field: string, text: RegExp) => {
        const err: unknown = await p.then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(InvalidRequestError);
        expect((err as InvalidRequestError).field).toBe(field);
        expect((err as Error).message).toMatch(text);
      };
      await refused(c.files.write('/etc/x', 'x'), 'path', /"\/etc\/x" is outside the work dir/);
      await refused(c.files.read('/proc/1/environ'), 'path', /outside the work dir/);
      await refused(c.files.write('../x', 'x'), 'path', /must not contain "\.\."/);
      await refused(c.files.write('a/../../x', 'x'), 'path', /must not contain "\.\."/);
      await refused(c.files.read('pw'), 'path', /"pw" leads outside/);
      await refused(c.files.read('etc/passwd'), 'path', /"etc\/passwd" leads outside/);
      await refused(c.files.write('etc/cron.d/x', 'x'), 'path', /"etc\/cron.d\/x" leads outside/);
      await refused(c.files.list('etc'), 'dir', /"etc" leads outside/);
      await refused(c.files.remove('etc/passwd'), 'path', /leads outside/);
      await refused(c.files.write('a\nb', 'x'), 'path', /control characters/);
      await refused(c.files.read('missing'), 'path', /"missing" does not exist/);
      await refused(c.files.read('in'), 'path', /is not a regular file/);
      await refused(c.files.write('up/x', 'x'), 'path', /"up\/x" leads outside/);
      // A symlink that stays inside is followed; one at the target is replaced, never followed.
      await c.files.write('inlink/ok', 'fine');
      expect((await c.files.read('in/ok')).toString()).toBe('fine');
      await c.files.write('pw', 'mine');
      expect((await sh(c, 'ls -l pw; cat pw')).stdout).toMatch(/^-.*\nmine$/);
      // The symlink was not removed by remove() of a path through it either.
      expect((await sh(c, 'test -L etc && echo link')).stdout).toBe('link\n');
    });

    it('caps a read at maxBytes, never cutting silently', async () => {
      await c.files.write('ten', '0123456789');
      expect((await c.files.read('ten', { maxBytes: 10 })).toString()).toBe('0123456789');
      await expect(c.files.read('ten', { maxBytes: 9 })).rejects.toThrow(
        /"ten" is 10 bytes, above maxBytes \(9\)/,
      );
      await expect(c.files.write('big', Buffer.alloc(11 * MiB + 1))).rejects.toThrow(
        /above maxFileBytes/,
      );
    });

    it('a file of mode 0000 written by the code: listed, unreadable, replaceable, removable', async () => {
      await sh(c, 'printf secret > locked; chmod 000 locked');
      expect((await c.files.list('.')).entries.find((e) => e.name === 'locked')).toMatchObject({
        type: 'file',
        size: 6,
        mode: 0,
      });
      await expect(c.files.read('locked')).rejects.toThrow(/not readable by the sandbox user/);
      await c.files.write('locked', 'open');
      expect((await c.files.read('locked')).toString()).toBe('open');
      await sh(c, 'chmod 000 locked');
      await c.files.remove('locked');
      await sh(c, 'mkdir shut; chmod 000 shut');
      await expect(c.files.list('shut')).rejects.toMatchObject({
        field: 'dir',
        message: expect.stringMatching(/"shut" is not readable by the sandbox user/),
      });
    });

    it('a full disk: FileOperationError naming the path, and nothing half-written left', async () => {
      await sh(c, 'head -c 200000000 /dev/zero > /tmp/fill 2>/dev/null; true');
      const err: unknown = await c.files.write('/tmp/x', Buffer.alloc(MiB)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(FileOperationError);
      expect((err as Error).message).toMatch(/"\/tmp\/x"/);
      expect((await sh(c, 'ls -A /tmp')).stdout).toBe('fill\n');
    });

    it('a fifo where a file should be: refused at once, never a hang', async () => {
      await sh(c, 'mkfifo pipe');
      const t0 = Date.now();
      await expect(c.files.read('pipe')).rejects.toThrow(/is not a regular file/);
      expect(Date.now() - t0).toBeLessThan(5000);
    });

    it('lists a directory of 100 000 entries with truncated', async () => {
      const r = await c.execute(
        [
          'sh',
          '-c',
          'mkdir many && cd many && i=0; while [ $i -lt 100 ]; do touch $(seq -f "f$i-%g" 1 1000 2>/dev/null || awk -v i=$i "BEGIN{for(k=1;k<=1000;k++) print \\"f\\" i \\"-\\" k}"); i=$((i+1)); done; ls | wc -l',
        ],
        { timeoutMs: 120_000 },
      );
      expect(r.stdout.trim()).toBe('100000');
      const t0 = Date.now();
      const l = await c.files.list('many');
      const ms = Date.now() - t0;
      expect(l.truncated).toBe(true);
      expect(l.entries).toHaveLength(1000);
      expect(l.entries.every((e) => e.type === 'file' && e.size === 0)).toBe(true);
      const all = await c.files.list('many', { maxEntries: 100_000 });
      expect(all).toMatchObject({ truncated: false });
      expect(all.entries).toHaveLength(100_000);
      console.log(`listing 100 000 entries: first 1000 in ${ms} ms`);
    }, 180_000);
  });

  describe('run({ files, collect })', () => {
    it('writes the files before the program and collects matching files after it, sorted', async () => {
      const r = await pool.run({
        cmd: [
          'sh',
          '-c',
          'cat in/data.csv | tr a-z A-Z > out.txt; mkdir -p out/sub out/.hidden; printf png1 > out/b.png; ' +
            'printf png2 > out/a.png; printf x > out/sub/c.png; printf h > out/.hidden/d.png; printf d > out/.e.png; ' +
            'mkfifo out/f.png; ln -s /etc/passwd out/p.png; printf q > out/q1.txt',
        ],
        files: [
          { path: 'in/data.csv', content: 'a,b\n1,2\n' },
          { path: '/tmp/bytes', content: everyByte, mode: 0o400 },
        ],
        collect: ['out/*.png', 'out.txt', 'out/q?.txt'],
      });
      expect(r.exitCode).toBe(0);
      expect(r.filesTruncated).toBe(false);
      expect(r.files!.map((f) => [f.path, f.content.toString(), f.truncated])).toEqual([
        ['out.txt', 'A,B\n1,2\n', false],
        ['out/a.png', 'png2', false],
        ['out/b.png', 'png1', false],
        ['out/q1.txt', 'q', false],
      ]);
      const deep = await pool.run({
        cmd: [
          'sh',
          '-c',
          'mkdir -p out/sub/x out/.h; printf 1 > out/sub/x/c.png; printf 2 > out/top.png; printf 3 > out/.h/z.png; printf 4 > out/.d.png',
        ],
        collect: ['**/*.png', 'out/.*.png'],
      });
      expect(deep.files!.map((f) => f.path)).toEqual([
        'out/.d.png',
        'out/sub/x/c.png',
        'out/top.png',
      ]);
    });

    it('files in the work dir and /tmp at once, one of mode 0000: each in place with its mode', async () => {
      const r = await pool.run({
        cmd: ['sh', '-c', 'stat -c %a /tmp/cp-mixed a.txt; cat a.txt'],
        files: [
          { path: 'a.txt', content: 'x' },
          { path: '/tmp/cp-mixed', content: 'secret', mode: 0 },
        ],
      });
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('0\n644\nx');
    });

    it('collects an empty file, every byte value, and a 10 MiB file', async () => {
      if (image === BUSYBOX_IMAGE) return; // no Python in busybox: the same with sh below
      const r = await pool.run({
        code:
          'import os\nopen("empty","wb").close()\nopen("bytes","wb").write(open("/tmp/in","rb").read())\n' +
          'open("big","wb").write(os.urandom(10*1024*1024))\n',
        files: [{ path: '/tmp/in', content: everyByte }],
        collect: ['empty', 'bytes', 'big'],
      });
      expect(r.exitCode).toBe(0);
      expect(r.files!.map((f) => [f.path, f.size, f.truncated])).toEqual([
        ['big', 10 * MiB, false],
        ['bytes', 256, false],
        ['empty', 0, false],
      ]);
      expect(r.files![1].content.equals(everyByte)).toBe(true);
      expect(r.files![0].content.length).toBe(10 * MiB);
    });

    it('with sh: an empty file, every byte value, a 10 MiB file', async () => {
      const r = await pool.run({
        cmd: ['sh', '-c', ': > empty; cp /tmp/in bytes; head -c 10485760 /dev/zero > big'],
        files: [{ path: '/tmp/in', content: everyByte }],
        collect: ['*'],
      });
      expect(r.files!.map((f) => [f.path, f.size, f.truncated])).toEqual([
        ['big', 10 * MiB, false],
        ['bytes', 256, false],
        ['empty', 0, false],
      ]);
      expect(r.files![1].content.equals(everyByte)).toBe(true);
    });

    it('refuses files beyond each cap before anything runs', async () => {
      const before = pool.stats().totals.executions;
      const bad = async (req: object, field: string, text: RegExp) => {
        const err: unknown = await pool.run({ cmd: ['true'], ...req }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(InvalidRequestError);
        expect((err as InvalidRequestError).field).toBe(field);
        expect((err as Error).message).toMatch(text);
      };
      await bad(
        { files: Array.from({ length: 6 }, (_, i) => ({ path: `f${i}`, content: '' })) },
        'files',
        /above maxFiles \(5\)/,
      );
      await bad(
        { files: [{ path: 'x', content: Buffer.alloc(11 * MiB + 1) }] },
        'files[0].content',
        /above maxFileBytes/,
      );
      await bad(
        {
          files: [
            { path: 'x', content: Buffer.alloc(7 * MiB) },
            { path: 'y', content: Buffer.alloc(6 * MiB) },
          ],
        },
        'files',
        /above maxFilesTotalBytes/,
      );
      await bad(
        { files: [{ path: '/etc/x', content: '' }] },
        'files[0].path',
        /outside the work dir/,
      );
      await bad({ files: [{ path: '../x', content: '' }] }, 'files[0].path', /\.\./);
      await bad({ collect: ['/etc/*'] }, 'collect[0]', /relative to the work dir/);
      await bad({ collect: ['../*'] }, 'collect[0]', /\.\./);
      expect(pool.stats().totals.executions).toBe(before);
    });

    it('collects within the caps: too big listed with truncated, stops at maxFiles and the total', async () => {
      const big = await pool.run({
        cmd: ['sh', '-c', 'head -c 11534337 /dev/zero > a.big; printf small > b.txt'],
        collect: ['*'],
      });
      expect(big.files!.map((f) => [f.path, f.size, f.truncated, f.content.length])).toEqual([
        ['a.big', 11 * MiB + 1, true, 0],
        ['b.txt', 5, false, 5],
      ]);
      expect(big.filesTruncated).toBe(false);
      const many = await pool.run({
        cmd: ['sh', '-c', 'for i in 1 2 3 4 5 6 7; do echo $i > f$i; done'],
        collect: ['f*'],
      });
      expect(many.files!.map((f) => f.path)).toEqual(['f1', 'f2', 'f3', 'f4', 'f5']);
      expect(many.filesTruncated).toBe(true);
      const total = await pool.run({
        cmd: ['sh', '-c', 'head -c 7340032 /dev/zero > a; head -c 7340032 /dev/zero > b'],
        collect: ['*'],
      });
      expect(total.files!.map((f) => [f.path, f.truncated])).toEqual([['a', false]]);
      expect(total.filesTruncated).toBe(true);
    });

    it('a planted symlink to /etc, a fifo and a mode 0000 file where collected files should be', async () => {
      const t0 = Date.now();
      const r = await pool.run({
        cmd: [
          'sh',
          '-c',
          'ln -s /etc/passwd passwd.txt; ln -s /etc etc; mkfifo fifo.txt; printf s > locked.txt; chmod 000 locked.txt; printf ok > ok.txt',
        ],
        collect: ['*.txt', 'etc/*'],
      });
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(r.files).toEqual([
        {
          path: 'locked.txt',
          size: 1,
          content: Buffer.alloc(0),
          truncated: true,
          unreadable: true,
        },
        { path: 'ok.txt', size: 2, content: Buffer.from('ok'), truncated: false },
      ]);
    });

    it('collects nothing after a timeout', async () => {
      const r = await pool.run({
        cmd: ['sh', '-c', 'echo x > a; sleep 30'],
        timeoutMs: 500,
        collect: ['*'],
      });
      expect(r).toMatchObject({ timedOut: true, files: [], filesTruncated: false });
    });
  });
});

describe.each(TRANSPORTS)('files over HTTP on the real engine (transport %s)', (transport) => {
  const TOKEN = 'files-int-token-0123456789';
  let app: INestApplication;
  let name: string;

  beforeAll(async () => {
    ({ app, name } = await startPool({ size: 1, http: true, adminToken: TOKEN, transport }));
  });

  afterAll(async () => {
    await app?.close();
    await expectNoContainersLeft(name);
  });

  it('takes content and contentBase64, returns collected files as contentBase64', async () => {
    const r = await request(app.getHttpServer() as Parameters<typeof request>[0])
      .post('/admin/pool/executions')
      .set('Authorization', `Bearer ${TOKEN}`)
      .send({
        cmd: ['sh', '-c', 'cat a.txt /tmp/b.bin > out.bin'],
        files: [
          { path: 'a.txt', content: 'héllo ' },
          { path: '/tmp/b.bin', contentBase64: everyByte.toString('base64') },
        ],
        collect: ['*.bin'],
      })
      .expect(200);
    const expected = Buffer.concat([Buffer.from('héllo '), everyByte]);
    expect(r.body.files).toEqual([
      {
        path: 'out.bin',
        size: expected.length,
        contentBase64: expected.toString('base64'),
        truncated: false,
      },
    ]);
    expect(r.body.filesTruncated).toBe(false);
    expect(r.body.transport).toBe(transport);
  });
});

describe('a million-entry directory', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    // Memory raised from the default: a million inodes on the tmpfs are kernel memory the cgroup may be charged.
    ({ app, pool, name } = await startPool({
      size: 0,
      memoryBytes: '2g',
      execTimeoutMs: 240_000,
    }));
  });

  afterAll(async () => {
    await app?.close();
    await expectNoContainersLeft(name);
  });

  it('is listed with truncated, at the default and at the largest maxEntries', async () => {
    await pool.withContainer(async (c) => {
      const r = await c.execute(
        [
          'python3',
          '-c',
          'import os\nos.mkdir("m")\nfor i in range(1000000): open("m/f%d" % i, "w").close()\nprint(len(os.listdir("m")))',
        ],
        { timeoutMs: 240_000 },
      );
      expect(r.stdout).toBe('1000000\n');
      let t0 = Date.now();
      const l = await c.files.list('m');
      const defaultMs = Date.now() - t0;
      expect(l.truncated).toBe(true);
      expect(l.entries).toHaveLength(1000);
      t0 = Date.now();
      const big = await c.files.list('m', { maxEntries: 100_000 });
      const bigMs = Date.now() - t0;
      expect(big.truncated).toBe(true);
      expect(big.entries).toHaveLength(100_000);
      expect(new Set(big.entries.map((e) => e.name)).size).toBe(100_000);
      console.log(`a million entries: 1000 listed in ${defaultMs} ms, 100 000 in ${bigMs} ms`);
    });
  }, 300_000);
});
