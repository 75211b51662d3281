import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CappedSink } from '../../src/container-pool/execution/output-sink';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('CappedSink memory (a container that floods)', () => {
  it('a kept piece does not pin the socket chunk it is a view of: 1 byte kept per 64 KiB chunk stays small', () => {
    // The demuxer and the runner decoder hand views of the socket's chunks; a job writing 1 byte on stdout between
    // floods of stderr beyond its cap makes each kept stdout byte a view into its own 64 KiB chunk.
    const sink = new CappedSink(1024 * 1024);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 1000; i++) {
      const chunk = Buffer.alloc(65536, 0x79);
      chunk[100] = 0x78;
      sink.write(chunk.subarray(100, 101));
    }
    gc();
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(sink.bytes.equals(Buffer.alloc(1000, 0x78))).toBe(true);
    // 1000 bytes kept; before the fix the sink pinned 1000 x 64 KiB (62.5 MiB).
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  });

  it('the events a listener holds (a consumer that stopped reading) do not pin the socket chunks either', () => {
    const held: Buffer[] = [];
    const sink = new CappedSink(1024 * 1024, {
      stream: 'stdout',
      onOutput: (c) => void held.push(c.data),
      onError: () => undefined,
    });
    gc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 1000; i++) {
      const chunk = Buffer.alloc(65536, 0x79);
      chunk[7] = 0x41 + (i % 26);
      sink.write(chunk.subarray(7, 8));
    }
    gc();
    const grown = process.memoryUsage().arrayBuffers - before;
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
