import { HOSTILE_LIMITS, py, sh, TRANSPORTS, useHostilePool } from '../../support/hostile';

const CAP = HOSTILE_LIMITS.maxOutputBytes;
const MiB = 1024 * 1024;

/** Hostile workloads against the output path: floods, binary output, stdin. */
describe.each(TRANSPORTS)('hostile workloads: output and input (transport %s)', (transport) => {
  const ctx = useHostilePool(transport);

  describe('4. output floods', () => {
    it('Python: a stdout flood is capped at maxOutputBytes, truncated set, stderr untouched', async () => {
      const r = await py(
        ctx.pool,
        'import sys\nsys.stdout.buffer.write(b"a" * (20 * 1024 * 1024))\nsys.stderr.write("done\\n")',
      );
      expect(r).toMatchObject({ exitCode: 0, truncated: true, timedOut: false, stderr: 'done\n' });
      expect(r.stdoutBytes.length).toBe(CAP);
      expect(r.stdoutBytes.equals(Buffer.alloc(CAP, 'a'))).toBe(true);
    });

    it('Python: a stderr flood is capped, stdout untouched', async () => {
      const r = await py(
        ctx.pool,
        'import sys\nsys.stderr.buffer.write(b"e" * (20 * 1024 * 1024))\nsys.stdout.write("fine\\n")',
      );
      expect(r).toMatchObject({ exitCode: 0, truncated: true, stdout: 'fine\n' });
      expect(r.stderrBytes.length).toBe(CAP);
      expect(r.stderrBytes.equals(Buffer.alloc(CAP, 'e'))).toBe(true);
    });

    it('Python: both streams flooded at once stay apart, each capped', async () => {
      const r = await py(
        ctx.pool,
        [
          'import sys',
          'for _ in range(2000):',
          '    sys.stdout.buffer.write(b"o" * 4096)',
          '    sys.stderr.buffer.write(b"E" * 4096)',
        ].join('\n'),
      );
      expect(r).toMatchObject({ exitCode: 0, truncated: true });
      expect(r.stdoutBytes.equals(Buffer.alloc(CAP, 'o'))).toBe(true);
      expect(r.stderrBytes.equals(Buffer.alloc(CAP, 'E'))).toBe(true);
    });

    it('shell: an endless flood runs to its timeout without the service holding it in memory', async () => {
      const before = process.memoryUsage();
      let peak = 0;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        peak = Math.max(
          peak,
          m.heapUsed + m.arrayBuffers - (before.heapUsed + before.arrayBuffers),
        );
      }, 10);
      try {
        const r = await sh(ctx.pool, 'cat /dev/zero & cat /dev/zero >&2', { timeoutMs: 3_000 });
        expect(r).toMatchObject({ timedOut: true, truncated: true });
        expect(r.stdoutBytes.length).toBe(CAP);
        expect(r.stderrBytes.length).toBe(CAP);
        expect(r.stdoutBytes.equals(Buffer.alloc(CAP, 0))).toBe(true);
      } finally {
        clearInterval(sampler);
      }
      // Hundreds of MiB went through the socket; the service kept only the capped bytes (plus GC slack: about
      // 48 MiB measured with 1 GB of output, and it does not grow with the volume).
      expect(peak).toBeLessThan(96 * MiB);
      const totals = ctx.pool.stats().totals;
      expect(totals.truncated).toBeGreaterThanOrEqual(4);
    });
  });

  describe('5. binary and invalid UTF-8 output', () => {
    it('Python: every byte value and broken UTF-8 sequences arrive unchanged in the raw buffers', async () => {
      const r = await py(
        ctx.pool,
        [
          'import sys',
          'payload = bytes(range(256)) + b"\\xff\\xfe\\xc3\\x28\\xe2\\x82" + b"\\x00end"',
          'sys.stdout.buffer.write(payload)',
          'sys.stderr.buffer.write(payload[::-1])',
        ].join('\n'),
      );
      const payload = Buffer.concat([
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]),
        Buffer.from('\0end'),
      ]);
      expect(r.exitCode).toBe(0);
      expect(r.stdoutBytes.equals(payload)).toBe(true);
      expect(r.stderrBytes.equals(Buffer.from(payload).reverse())).toBe(true);
      // The text view replaces what is not UTF-8; the bytes stay the source of truth.
      expect(r.stdout).toContain('\ufffd');
    });

    it('shell: printf of raw bytes', async () => {
      const r = await sh(ctx.pool, "printf '\\000\\001\\377\\376abc'");
      expect(r.stdoutBytes.equals(Buffer.from([0, 1, 0xff, 0xfe, 0x61, 0x62, 0x63]))).toBe(true);
    });
  });

  describe('7. stdin when none is given', () => {
    it('Python: reading stdin gets EOF at once, no hang', async () => {
      const r = await py(
        ctx.pool,
        'import sys\ndata = sys.stdin.buffer.read()\nprint(len(data), repr(input.__name__))',
        {
          timeoutMs: 3_000,
        },
      );
      expect(r).toMatchObject({ exitCode: 0, timedOut: false, stdout: "0 'input'\n" });
    });

    it('Python: input() raises EOFError rather than waiting', async () => {
      const r = await py(ctx.pool, 'try:\n    input()\nexcept EOFError:\n    print("eof")', {
        timeoutMs: 3_000,
      });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'eof\n', timedOut: false });
    });

    it('shell: cat with no stdin ends at once', async () => {
      const r = await ctx.pool.run({ cmd: ['cat'], timeoutMs: 3_000 });
      expect(r).toMatchObject({ exitCode: 0, stdout: '', timedOut: false });
    });
  });
});
