import { PassThrough, Writable } from 'node:stream';
import type { DriverExecRequest } from '../../src/container-pool/engine/container-driver.interface';
import { DockerDemuxer } from '../../src/container-pool/engine/docker/docker-demux';
import {
  ContainerLostError,
  ExecutionAbortedError,
} from '../../src/container-pool/errors/container-pool.errors';
import { outputLine, streamFormatOf } from '../../src/container-pool/http/execution-stream';
import { STREAM_HIGH_WATER_BYTES } from '../../src/container-pool/execution/exec-stream';
import type { ExecResult } from '../../src/container-pool/interfaces/exec-result.interface';
import type {
  ExecStreamEvent,
  OutputChunk,
} from '../../src/container-pool/interfaces/output-event.interface';
import type { FakeExecResult } from '../support/fake-driver';
import { tick, useFakePools, waitFor } from '../support/pool-testing';

const none = Buffer.alloc(0);
const ok = (): FakeExecResult => ({
  exitCode: 0,
  stdout: none,
  stderr: none,
  truncated: false,
  aborted: false,
});

/** Writes `pieces` as the engine's demuxer does: honouring write() === false and drain. */
async function writeLikeTheEngine(
  req: DriverExecRequest,
  pieces: { stream: 'stdout' | 'stderr'; data: Buffer }[],
  written?: { bytes: number },
): Promise<void> {
  for (const p of pieces) {
    const target = p.stream === 'stdout' ? req.stdout : req.stderr;
    if (written) written.bytes += p.data.length;
    if (!target.write(p.data)) await new Promise((r) => target.once('drain', r));
  }
}

const untilAborted = (req: DriverExecRequest) =>
  new Promise<void>((r) => {
    if (req.signal.aborted) return r();
    req.signal.addEventListener('abort', () => r(), { once: true });
  });

const concat = (chunks: OutputChunk[], stream: 'stdout' | 'stderr') =>
  Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data));

function expectContiguous(chunks: OutputChunk[]) {
  for (const stream of ['stdout', 'stderr'] as const) {
    let at = 0;
    for (const c of chunks.filter((x) => x.stream === stream)) {
      expect(c.offset).toBe(at);
      at += c.data.length;
    }
  }
}

describe('streamed output (fake driver)', () => {
  const start = useFakePools();

  it('onOutput gets exactly the kept bytes, with offsets, in order, nothing beyond the cap', async () => {
    const { pool, driver } = await start();
    driver.execBehaviour = async (req) => {
      await writeLikeTheEngine(req, [
        { stream: 'stdout', data: Buffer.from('hello ') },
        { stream: 'stderr', data: Buffer.from('warn\n') },
        { stream: 'stdout', data: Buffer.from('world\n') },
        { stream: 'stdout', data: Buffer.from('and more beyond the cap') },
        { stream: 'stdout', data: Buffer.from('never seen') },
      ]);
      return ok();
    };
    const chunks: OutputChunk[] = [];
    const r = await pool.run({
      cmd: ['x'],
      maxOutputBytes: 16,
      onOutput: (c) => void chunks.push({ ...c }),
    });
    expect(r.stdout).toBe('hello world\nand ');
    expect(concat(chunks, 'stdout').equals(r.stdoutBytes)).toBe(true);
    expect(concat(chunks, 'stderr').equals(r.stderrBytes)).toBe(true);
    expect(chunks.map((c) => [c.stream, c.offset, c.data.toString()])).toEqual([
      ['stdout', 0, 'hello '],
      ['stderr', 0, 'warn\n'],
      ['stdout', 6, 'world\n'],
      ['stdout', 12, 'and '],
    ]);
    expectContiguous(chunks);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stdoutTotalBytes).toBe(12 + 23 + 10);
  });

  it('onOutput works on container.execute() too, and the result waits for a slow callback', async () => {
    const { pool, driver } = await start();
    driver.execBehaviour = async (req) => {
      await writeLikeTheEngine(req, [
        { stream: 'stdout', data: Buffer.from('a') },
        { stream: 'stdout', data: Buffer.from('b') },
      ]);
      return ok();
    };
    const seen: string[] = [];
    const r = await pool.withContainer((c) =>
      c.execute(['x'], {
        onOutput: async (chunk) => {
          await tick(20);
          seen.push(chunk.data.toString());
        },
      }),
    );
    expect(seen).toEqual(['a', 'b']);
    expect(r.stdout).toBe('ab');
  });

  it('asks the bootstrap for line buffering only when the caller streams (never through env)', async () => {
    const { pool, driver } = await start();
    const jobs: DriverExecRequest[] = [];
    driver.execBehaviour = (req) => {
      jobs.push(req);
      return ok();
    };
    await pool.run({ code: 'print(1)' });
    await pool.run({ code: 'print(1)', onOutput: () => undefined });
    expect(jobs[0].cmd.at(-1)).not.toBe('-l');
    expect(jobs[1].cmd.at(-1)).toBe('-l');
    expect(jobs[1].env).toEqual([]);
  });

  it('rejects an onOutput that is no function, naming the field', async () => {
    const { pool } = await start();
    await expect(
      pool.run({ cmd: ['x'], onOutput: 'nope' as unknown as () => void }),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST', field: 'onOutput' });
  });

  it('an onOutput that throws kills the execution with its error and removes the container', async () => {
    const { pool, driver } = await start();
    driver.execBehaviour = async (req) => {
      await writeLikeTheEngine(req, [{ stream: 'stdout', data: Buffer.from('a') }]);
      await untilAborted(req);
      return { ...ok(), exitCode: null, aborted: true };
    };
    const boom = new Error('consumer broke');
    await expect(
      pool.run({
        cmd: ['x'],
        onOutput: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    await waitFor(() => driver.removedIds.length === 1, 1000, 'removal');
  });

  it('stream() yields the output events, then exactly one result', async () => {
    const { pool, driver } = await start();
    driver.execBehaviour = async (req) => {
      await writeLikeTheEngine(req, [
        { stream: 'stdout', data: Buffer.from('1\n') },
        { stream: 'stderr', data: Buffer.from('e') },
        { stream: 'stdout', data: Buffer.from('2\n') },
      ]);
      return ok();
    };
    const events: ExecStreamEvent[] = [];
    for await (const e of pool.stream({ cmd: ['x'] })) events.push(e);
    expect(events.map((e) => e.type)).toEqual(['output', 'output', 'output', 'result']);
    const last = events.at(-1)!;
    if (last.type !== 'result') throw new Error('no result');
    const outputs = events.filter((e) => e.type === 'output');
    expect(concat(outputs, 'stdout').equals(last.result.stdoutBytes)).toBe(true);
    expect(concat(outputs, 'stderr').toString()).toBe('e');
    expectContiguous(outputs);
    // The profile's pool streams too.
    const again: string[] = [];
    for await (const e of pool.pool().stream({ cmd: ['x'] })) again.push(e.type);
    expect(again).toEqual(['output', 'output', 'output', 'result']);
  });

  it('breaking out of stream() aborts the run and removes its container', async () => {
    const { pool, driver } = await start();
    let aborted = false;
    driver.execBehaviour = async (req) => {
      await writeLikeTheEngine(req, [{ stream: 'stdout', data: Buffer.from('first') }]);
      await untilAborted(req);
      aborted = true;
      return { ...ok(), exitCode: null, aborted: true };
    };
    for await (const e of pool.stream({ cmd: ['x'] })) {
      expect(e.type).toBe('output');
      break;
    }
    expect(aborted).toBe(true);
    await waitFor(() => driver.removedIds.length === 1, 1000, 'removal');
    expect(pool.stats().leased).toBe(0);
  });

  it("stream() rejects with the typed error of an infrastructure failure, and with the caller's abort", async () => {
    const { pool, driver } = await start();
    driver.execBehaviour = async (req) => {
      await writeLikeTheEngine(req, [{ stream: 'stdout', data: Buffer.from('x') }]);
      throw new ContainerLostError('c', 'gone (fake)');
    };
    const seen: string[] = [];
    const iterate = async (request: Parameters<typeof pool.stream>[0]) => {
      for await (const e of pool.stream(request)) seen.push(e.type);
    };
    await expect(iterate({ cmd: ['x'] })).rejects.toBeInstanceOf(ContainerLostError);
    expect(seen).toEqual(['output']);

    driver.execBehaviour = async (req) => {
      await untilAborted(req);
      return { ...ok(), exitCode: null, aborted: true };
    };
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await expect(iterate({ cmd: ['x'], signal: ac.signal })).rejects.toBeInstanceOf(
      ExecutionAbortedError,
    );
    // An unknown profile is the typed error too.
    await expect(iterate({ cmd: ['x'], profile: 'nope' })).rejects.toMatchObject({
      code: 'UNKNOWN_PROFILE',
    });
  });

  it('a slow stream() consumer pauses the writer: what is held stays bounded', async () => {
    const { pool, driver } = await start({ maxOutputBytes: '64m' });
    const written = { bytes: 0 };
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const total = 8 * 1024 * 1024;
    driver.execBehaviour = async (req) => {
      const pieces = Array.from({ length: total / piece.length }, () => ({
        stream: 'stdout' as const,
        data: piece,
      }));
      await writeLikeTheEngine(req, pieces, written);
      return ok();
    };
    let consumed = 0;
    let maxAhead = 0;
    let result: ExecResult | null = null;
    for await (const e of pool.stream({ cmd: ['x'] })) {
      if (e.type === 'result') result = e.result;
      else consumed += e.data.length;
      maxAhead = Math.max(maxAhead, written.bytes - consumed);
      if (consumed % (1024 * 1024) === 0) await tick(5);
      else await tick(0);
    }
    expect(consumed).toBe(total);
    expect(result?.stdoutBytes.length).toBe(total);
    // The queue's high-water mark, plus a piece in the sink and one in flight.
    expect(maxAhead).toBeLessThanOrEqual(STREAM_HIGH_WATER_BYTES + 3 * piece.length);
  });
});

describe('DockerDemuxer', () => {
  const frame = (type: number, payload: string) => {
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(Buffer.byteLength(payload), 4);
    return Buffer.concat([h, Buffer.from(payload)]);
  };

  class Collect extends Writable {
    readonly chunks: Buffer[] = [];
    constructor(private readonly delayMs = 0) {
      super({ highWaterMark: 4 });
    }
    override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void) {
      this.chunks.push(chunk);
      if (this.delayMs) setTimeout(cb, this.delayMs);
      else cb();
    }
    get text() {
      return Buffer.concat(this.chunks).toString();
    }
  }

  it('splits frames cut anywhere (headers across chunks) into stdout and stderr', async () => {
    const wire = Buffer.concat([
      frame(1, 'hello '),
      frame(2, 'oops'),
      frame(1, 'world'),
      frame(1, ''),
      frame(2, '!'),
    ]);
    for (const step of [1, 3, 7, 8, 9, 100]) {
      const out = new Collect();
      const err = new Collect();
      const d = new DockerDemuxer(out, err);
      for (let i = 0; i < wire.length; i += step) d.write(wire.subarray(i, i + step));
      await new Promise<void>((r) => d.end(r));
      expect(out.text).toBe('hello world');
      expect(err.text).toBe('oops!');
      expect(d.head.stdout.toString()).toBe('hello world');
    }
  });

  it('pauses its source while a target is behind (pipe backpressure)', async () => {
    const out = new Collect(2);
    const err = new Collect();
    const d = new DockerDemuxer(out, err);
    const source = new PassThrough({ highWaterMark: 1024 });
    source.pipe(d);
    const payload = 'x'.repeat(1000);
    let refused = 0;
    for (let i = 0; i < 200; i++) if (!source.write(frame(1, payload))) refused++;
    source.end();
    // The slow target makes the demuxer refuse, which makes the source refuse its writer.
    expect(refused).toBeGreaterThan(0);
    await new Promise((r) => d.once('finish', r));
    expect(out.text.length).toBe(200 * 1000);
  });
});

describe('streamed HTTP answers: media type and lines', () => {
  it('picks NDJSON or SSE from Accept, JSON otherwise', () => {
    expect(streamFormatOf('application/x-ndjson')).toBe('ndjson');
    expect(streamFormatOf('text/event-stream')).toBe('sse');
    // The highest q wins (application/json has q=1 here); for equal q, the first listed.
    expect(streamFormatOf('text/event-stream;q=0.9, application/json')).toBeNull();
    expect(streamFormatOf('application/json;q=0.1, application/x-ndjson;q=0.9')).toBe('ndjson');
    expect(streamFormatOf('application/x-ndjson;q=0.1, application/json')).toBeNull();
    expect(streamFormatOf('text/event-stream, application/json')).toBe('sse');
    expect(streamFormatOf('application/json, application/x-ndjson')).toBeNull();
    expect(streamFormatOf('application/x-ndjson;q=0')).toBeNull();
    expect(streamFormatOf(undefined)).toBeNull();
    expect(streamFormatOf('*/*')).toBeNull();
  });

  it('an output line carries text when the chunk is valid UTF-8, else (or when asked) base64', () => {
    const chunk = (data: Buffer): OutputChunk => ({ stream: 'stdout', data, offset: 3 });
    expect(outputLine(chunk(Buffer.from('héllo')), 'text')).toEqual({
      type: 'output',
      stream: 'stdout',
      offset: 3,
      text: 'héllo',
    });
    // A chunk cut inside a character is not valid UTF-8 on its own.
    expect(outputLine(chunk(Buffer.from('é').subarray(0, 1)), 'text')).toMatchObject({
      base64: 'ww==',
    });
    expect(outputLine(chunk(Buffer.from('a')), 'base64')).toMatchObject({ base64: 'YQ==' });
  });
});
