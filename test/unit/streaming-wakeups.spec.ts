/*
 * Regressions found by a hostile review of streamed output: two producers waiting at once (stdout and stderr
 * each wait for room) must both be woken, a keepalive must never take a producer's wake-up, and concurrent
 * next() calls on one stream() iterator must all be answered.
 */
import { execStream } from '../../src/container-pool/execution/exec-stream';
import { streamExecution, streamTiming } from '../../src/container-pool/http/execution-stream';
import type { ExecResult } from '../../src/container-pool/interfaces/exec-result.interface';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const result = {
  exitCode: 0,
  stdout: '',
  stderr: '',
  stdoutBytes: Buffer.alloc(0),
  stderrBytes: Buffer.alloc(0),
  timedOut: false,
  oomKilled: false,
  truncated: false,
  stdoutTruncated: false,
  stderrTruncated: false,
  stdoutTotalBytes: 0,
  stderrTotalBytes: 0,
  durationMs: 1,
  queuedMs: 0,
} as unknown as ExecResult;

describe('streamed output: every waiting producer is woken', () => {
  it('stream(): stdout and stderr both waiting for room both resume', async () => {
    const done = { stdout: false, stderr: false };
    const big = Buffer.alloc(300 * 1024);
    const iterator = execStream(async ({ onOutput }) => {
      const a = Promise.resolve(onOutput({ stream: 'stdout', data: big, offset: 0 })).then(
        () => (done.stdout = true),
      );
      const b = Promise.resolve(onOutput({ stream: 'stderr', data: big, offset: 0 })).then(
        () => (done.stderr = true),
      );
      await Promise.race([Promise.all([a, b]), sleep(3000)]);
      return result;
    })[Symbol.asyncIterator]();
    const seen: string[] = [];
    for (;;) {
      const r = await iterator.next();
      if (r.done) break;
      seen.push(r.value.type);
    }
    expect(done).toEqual({ stdout: true, stderr: true });
    expect(seen).toEqual(['output', 'output', 'result']);
  });

  it('stream(): concurrent next() calls are all answered, in order', async () => {
    const iterator = execStream(async ({ onOutput }) => {
      await sleep(50);
      await onOutput({ stream: 'stdout', data: Buffer.from('a'), offset: 0 });
      await sleep(50);
      await onOutput({ stream: 'stdout', data: Buffer.from('b'), offset: 1 });
      return result;
    })[Symbol.asyncIterator]();
    const [x, y, z] = await Promise.race([
      Promise.all([iterator.next(), iterator.next(), iterator.next()]),
      sleep(3000).then(() => {
        throw new Error('hung');
      }),
    ]);
    expect([x.value?.type, y.value?.type, z.value?.type]).toEqual(['output', 'output', 'result']);
  });

  it('HTTP: two producers waiting at once both resume once the client reads', async () => {
    const done = { stdout: false, stderr: false };
    const big = Buffer.alloc(40 * 1024, 0x61);
    const file = await streamExecution({
      format: 'ndjson',
      encoding: 'text',
      run: async (onOutput) => {
        await onOutput({ stream: 'stdout', data: big, offset: 0 });
        const a = Promise.resolve(
          onOutput({ stream: 'stdout', data: big, offset: big.length }),
        ).then(() => (done.stdout = true));
        const b = Promise.resolve(onOutput({ stream: 'stderr', data: big, offset: 0 })).then(
          () => (done.stderr = true),
        );
        await Promise.race([Promise.all([a, b]), sleep(3000)]);
        return result;
      },
    });
    const lines = file.getStream();
    await sleep(100); // the client reads only now
    lines.on('data', () => undefined);
    await new Promise((r) => lines.once('end', r));
    expect(done).toEqual({ stdout: true, stderr: true });
  });

  it('HTTP: a keepalive while the producer waits does not take its wake-up', async () => {
    const saved = streamTiming.keepaliveMs;
    streamTiming.keepaliveMs = 30;
    try {
      let resumed = false;
      const big = Buffer.alloc(80 * 1024, 0x61);
      const file = await streamExecution({
        format: 'ndjson',
        encoding: 'text',
        run: async (onOutput) => {
          await onOutput({ stream: 'stdout', data: big, offset: 0 });
          await Promise.race([
            Promise.resolve(onOutput({ stream: 'stdout', data: big, offset: big.length })).then(
              () => (resumed = true),
            ),
            sleep(3000),
          ]);
          return result;
        },
      });
      const lines = file.getStream();
      await sleep(200); // several keepalives fire while the client does not read
      const text: string[] = [];
      lines.on('data', (d: Buffer) => text.push(d.toString()));
      await new Promise((r) => lines.once('end', r));
      expect(resumed).toBe(true);
      expect(text.join('')).toContain('"type":"keepalive"');
    } finally {
      streamTiming.keepaliveMs = saved;
    }
  });
});
