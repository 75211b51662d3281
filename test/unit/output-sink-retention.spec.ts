import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CappedSink } from '../../src/container-pool/execution/output-sink';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * The ArrayBuffer memory once collected: V8 may free a collected backing store a moment after gc() returns (its
 * sweeper runs concurrently), so the smallest of a few samples counts. Memory a live object pins never goes.
 */
async function settledArrayBuffers(): Promise<number> {
  let least = Infinity;
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
    least = Math.min(least, process.memoryUsage().arrayBuffers);
  }
  return least;
}

describe('CappedSink memory (a container that floods)', () => {
  it('a kept piece does not pin the socket chunk it is a view of: 1 byte kept per 64 KiB chunk stays small', async () => {
    // The demuxer and the runner decoder hand views of the socket's chunks; a job writing 1 byte on stdout between
    // floods of stderr beyond its cap makes each kept stdout byte a view into its own 64 KiB chunk.
    const sink = new CappedSink(1024 * 1024);
    const before = await settledArrayBuffers();
    for (let i = 0; i < 1000; i++) {
      const chunk = Buffer.alloc(65536, 0x79);
      chunk[100] = 0x78;
      sink.write(chunk.subarray(100, 101));
    }
    const grown = (await settledArrayBuffers()) - before;
    expect(sink.bytes.equals(Buffer.alloc(1000, 0x78))).toBe(true);
    // 1000 bytes kept; before the fix the sink pinned 1000 x 64 KiB (62.5 MiB).
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  });

  it('the events a listener holds (a consumer that stopped reading) do not pin the socket chunks either', async () => {
    const held: Buffer[] = [];
    const sink = new CappedSink(1024 * 1024, {
      stream: 'stdout',
      onOutput: (c) => void held.push(c.data),
      onError: () => undefined,
    });
    const before = await settledArrayBuffers();
    for (let i = 0; i < 1000; i++) {
      const chunk = Buffer.alloc(65536, 0x79);
      chunk[7] = 0x41 + (i % 26);
      sink.write(chunk.subarray(7, 8));
    }
    const grown = (await settledArrayBuffers()) - before;
    expect(held.map((b) => b.toString()).join('')).toBe(sink.bytes.toString());
    expect(held[27].toString()).toBe('B');
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  });

  it('still keeps exactly the first capBytes and counts the rest', () => {
    const sink = new CappedSink(10);
    sink.write(Buffer.from('hello '));
    sink.write(Buffer.from('world, and more'));
    expect(sink.bytes.toString()).toBe('hello worl');
    expect(sink.totalBytes).toBe(21);
    expect(sink.truncated).toBe(true);
  });
});
