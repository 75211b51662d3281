import type { INestApplication } from '@nestjs/common';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import type { ExecResult } from '../../src/container-pool/interfaces/exec-result.interface';
import type { OutputChunk } from '../../src/container-pool/interfaces/output-event.interface';
import { streamTiming } from '../../src/container-pool/http/execution-stream';
import {
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
  TRANSPORTS,
} from '../support/integration';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Streamed output on the real engine, on each transport: timing of chunks, caps, break, backpressure. */
describe.each(TRANSPORTS)('streamed output on a real engine (transport %s)', (transport) => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({
      size: 1,
      maxContainers: 3,
      maxOutputBytes: '64m',
      execTimeoutMs: 60_000,
      transport,
    }));
    await pool.initialize();
    expect(pool.stats().transport).toBe(transport);
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('run({ code }) streams the 0.3 s script as it prints: three chunks, spaced', async () => {
    const code = 'import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.3)\n';
    const arrivals: { at: number; text: string }[] = [];
    const t0 = performance.now();
    const r = await pool.run({
      code,
      onOutput: (c) => void arrivals.push({ at: performance.now() - t0, text: c.data.toString() }),
    });
    expect(r.exitCode).toBe(0);
    expect(arrivals.map((a) => a.text)).toEqual(['0\n', '1\n', '2\n']);
    // Each line comes after the program's sleep, not all at the end (generous: the sleep is 300 ms).
    expect(arrivals[1].at - arrivals[0].at).toBeGreaterThan(200);
    expect(arrivals[2].at - arrivals[1].at).toBeGreaterThan(200);
  });

  it('streams exactly the kept bytes with their offsets, both streams, nothing beyond the cap', async () => {
    const code = [
      'import os, sys',
      'for i in range(300):',
      '    sys.stdout.buffer.write(os.urandom(7919)); sys.stdout.flush()',
      '    if i % 3 == 0: sys.stderr.buffer.write(os.urandom(1013)); sys.stderr.flush()',
    ].join('\n');
    const chunks: OutputChunk[] = [];
    const cap = 1_000_000;
    const r = await pool.run({
      code,
      maxOutputBytes: cap,
      onOutput: (c) => void chunks.push(c),
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdoutBytes.length).toBe(cap);
    expect(r.stdoutTotalBytes).toBe(300 * 7919);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stderrBytes.length).toBe(100 * 1013);
    expect(concat(chunks, 'stdout').equals(r.stdoutBytes)).toBe(true);
    expect(concat(chunks, 'stderr').equals(r.stderrBytes)).toBe(true);
    expectContiguous(chunks);
  });

  it('stream() ends with one result; breaking out removes the container', async () => {
    const types: string[] = [];
    let result: ExecResult | null = null;
    for await (const e of pool.stream({
      cmd: ['sh', '-c', 'echo a; echo b >&2; sleep 0.2; echo c'],
    })) {
      types.push(e.type);
      if (e.type === 'result') result = e.result;
    }
    expect(types.filter((t) => t === 'result')).toHaveLength(1);
    expect(types.at(-1)).toBe('result');
    expect(result?.stdout).toBe('a\nc\n');

    let leasedId: string | undefined;
    for await (const e of pool.stream({ cmd: ['sh', '-c', 'echo started; sleep 60'] })) {
      expect(e.type).toBe('output');
      leasedId = pool.containers().find((c) => c.state === 'leased')?.id;
      break;
    }
    expect(leasedId).toBeDefined();
    await eventually(
      async () => !(await engineContainers(name)).some((c) => c.Id === leasedId),
      10_000,
      'the broken-off run’s container removed',
    );
  });

  it('a consumer that stops reading pauses the program (backpressure)', async () => {
    // 32 MiB, then the time it finished writing: it can only finish after the consumer read again.
    const code = [
      'import sys, time',
      'b = b"x" * (1 << 20)',
      'for _ in range(32): sys.stdout.buffer.write(b)',
      'sys.stdout.flush()',
      'sys.stderr.write(repr(time.time()))',
    ].join('\n');
    let resumedAt = 0;
    let first = true;
    let stdout = 0;
    let stderr = '';
    for await (const e of pool.stream({ code })) {
      if (e.type !== 'output') continue;
      if (e.stream === 'stderr') stderr += e.data.toString();
      else stdout += e.data.length;
      if (first) {
        first = false;
        await sleep(1500);
        resumedAt = Date.now();
      }
    }
    expect(stdout).toBe(32 << 20);
    const doneAt = Number(stderr) * 1000;
    expect(doneAt).toBeGreaterThan(resumedAt);
  });

  it('memory stays bounded: 400 MB to a slow consumer, 16 MiB kept', async () => {
    const code = [
      'import sys',
      'b = b"y" * (1 << 20)',
      'for _ in range(400): sys.stdout.buffer.write(b)',
    ].join('\n');
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    let streamed = 0;
    let result: ExecResult | null = null;
    try {
      for await (const e of pool.stream({ code, maxOutputBytes: 16 << 20 })) {
        if (e.type === 'result') result = e.result;
        else {
          streamed += e.data.length;
          await sleep(1);
        }
      }
    } finally {
      clearInterval(sampler);
    }
    expect(streamed).toBe(16 << 20);
    expect(result?.stdoutTotalBytes).toBe(400 << 20);
    const growthMb = (peak - before) / 2 ** 20;

    console.log(`rss growth while streaming 400 MB (16 MiB kept): ${growthMb.toFixed(1)} MiB`);
    expect(growthMb).toBeLessThan(200);
  });
});

/** Reads a streamed answer line by line (NDJSON lines, or SSE `data:` events), with each line's arrival time. */
async function readLines(
  res: Response,
  format: 'ndjson' | 'sse',
  onLine?: (line: Record<string, unknown>) => void,
  /** Awaited per line: a slow reader. */
  slowLine?: (line: Record<string, unknown>) => Promise<void>,
): Promise<{ at: number; line: Record<string, unknown> }[]> {
  const t0 = performance.now();
  const out: { at: number; line: Record<string, unknown> }[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  // Pieces of the current line, so that a line of tens of MB (a result) is joined once.
  let pieces: string[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let text = decoder.decode(value, { stream: true });
    let i;
    while ((i = text.indexOf('\n')) >= 0) {
      pieces.push(text.slice(0, i));
      text = text.slice(i + 1);
      const raw = pieces.join('');
      pieces = [];
      // SSE: the blank line after each event.
      if (format === 'sse' && raw === '') continue;
      const json = format === 'ndjson' ? raw : raw.replace(/^data: /, '');
      const line = JSON.parse(json) as Record<string, unknown>;
      out.push({ at: performance.now() - t0, line });
      onLine?.(line);
      if (slowLine) await slowLine(line);
    }
    if (text) pieces.push(text);
  }
  expect(pieces).toEqual([]);
  return out;
}

describe.each(TRANSPORTS)(
  'streamed executions over HTTP (NDJSON, SSE) (transport %s)',
  (transport) => {
    const TOKEN = 'stream-token-0123456789';
    let app: INestApplication;
    let pool: ContainerPoolService;
    let name: string;
    let base: string;

    beforeAll(async () => {
      ({ app, pool, name } = await startPool({
        size: 1,
        maxContainers: 3,
        execTimeoutMs: 60_000,
        maxOutputBytes: '64m',
        http: true,
        adminToken: TOKEN,
        transport,
      }));
      await pool.initialize();
      expect(pool.stats().transport).toBe(transport);
      await app.listen(0, '127.0.0.1');
      const addr = app.getHttpServer().address() as { port: number };
      base = `http://127.0.0.1:${addr.port}/admin/pool`;
    });

    afterAll(async () => {
      streamTiming.keepaliveMs = 15_000;
      await app?.close();
      if (name) await expectNoContainersLeft(name);
    });

    const post = (body: object, accept: string, signal?: AbortSignal) =>
      fetch(`${base}/executions`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${TOKEN}`,
          'Content-Type': 'application/json',
          Accept: accept,
        },
        body: JSON.stringify(body),
        signal,
      });

    it('NDJSON: output lines as the program prints, then exactly one result line', async () => {
      const code = 'import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.3)\n';
      const res = await post({ code }, 'application/x-ndjson');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      const lines = await readLines(res, 'ndjson');
      const outputs = lines.filter((l) => l.line.type === 'output');
      expect(outputs.map((l) => l.line)).toEqual([
        { type: 'output', stream: 'stdout', offset: 0, text: '0\n' },
        { type: 'output', stream: 'stdout', offset: 2, text: '1\n' },
        { type: 'output', stream: 'stdout', offset: 4, text: '2\n' },
      ]);
      expect(outputs[1].at - outputs[0].at).toBeGreaterThan(200);
      const results = lines.filter((l) => l.line.type === 'result');
      expect(results).toHaveLength(1);
      expect(lines.at(-1)!.line.type).toBe('result');
      expect(results[0].line.result).toMatchObject({ exitCode: 0, stdout: '0\n1\n2\n' });
    });

    it('NDJSON with files in and collected: the result line carries them as base64', async () => {
      const res = await post(
        {
          code: 'import os\nos.makedirs("out", exist_ok=True)\ndata = open("in/x.bin", "rb").read()\nprint(len(data))\nopen("out/y.bin", "wb").write(data[::-1])',
          files: [
            { path: 'in/x.bin', contentBase64: Buffer.from([0, 1, 2, 255]).toString('base64') },
          ],
          collect: ['out/*.bin'],
          // The pool's 64 MiB output cap would leave no room in maxBodyBytes for collected files.
          maxOutputBytes: 1024,
        },
        'application/x-ndjson',
      );
      expect(res.status).toBe(200);
      const lines = await readLines(res, 'ndjson');
      const result = lines.find((l) => l.line.type === 'result')!.line.result as {
        stdout: string;
        files: { path: string; contentBase64: string }[];
      };
      expect(result).toMatchObject({ stdout: '4\n' });
      expect(result.files.map((f) => [f.path, Buffer.from(f.contentBase64, 'base64')])).toEqual([
        ['out/y.bin', Buffer.from([255, 2, 1, 0])],
      ]);
    });

    it('SSE: data events, base64 for bytes that are no UTF-8, and keepalives in silence', async () => {
      streamTiming.keepaliveMs = 200;
      try {
        const res = await post(
          { cmd: ['sh', '-c', 'printf "\\377\\376"; sleep 0.7; echo done >&2'] },
          'text/event-stream',
        );
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const lines = (await readLines(res, 'sse')).map((l) => l.line);
        // (A keepalive may come first when the exec is slow to start on a loaded machine.)
        const outputs = lines.filter((l) => l.type === 'output');
        expect(outputs[0]).toEqual({
          type: 'output',
          stream: 'stdout',
          offset: 0,
          base64: Buffer.from([0xff, 0xfe]).toString('base64'),
        });
        expect(lines.filter((l) => l.type === 'keepalive').length).toBeGreaterThanOrEqual(1);
        expect(lines).toContainEqual({
          type: 'output',
          stream: 'stderr',
          offset: 0,
          text: 'done\n',
        });
        expect(lines.at(-1)).toMatchObject({ type: 'result', result: { exitCode: 0 } });
      } finally {
        streamTiming.keepaliveMs = 15_000;
      }
    });

    it('a client that disconnects mid-stream kills the run: its container is removed', async () => {
      const ac = new AbortController();
      const res = await post(
        { cmd: ['sh', '-c', 'echo started; sleep 60'] },
        'application/x-ndjson',
        ac.signal,
      );
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain('"started\\n"');
      const leasedId = pool.containers().find((c) => c.state === 'leased')?.id;
      expect(leasedId).toBeDefined();
      ac.abort();
      await eventually(
        async () => !(await engineContainers(name)).some((c) => c.Id === leasedId),
        10_000,
        'the disconnected run’s container removed',
      );
    });

    it('a failure after the first byte is one error line (the status is already 200)', async () => {
      let killed = false;
      const res = await post(
        { cmd: ['sh', '-c', 'echo started; sleep 60'] },
        'application/x-ndjson',
      );
      expect(res.status).toBe(200);
      const lines = await readLines(res, 'ndjson', (line) => {
        if (killed || line.type !== 'output') return;
        killed = true;
        const id = pool.containers().find((c) => c.state === 'leased')!.id;
        // The container dies under the execution, outside the pool.
        void docker.getContainer(id).kill();
      });
      expect(lines.map((l) => l.line.type)).toEqual(['output', 'error']);
      expect(lines[1].line.error).toMatchObject({ code: 'CONTAINER_LOST' });
    });

    it('a client that stops reading pauses the program (backpressure over HTTP)', async () => {
      const code = [
        'import sys, time',
        'b = b"z" * (1 << 20)',
        'for _ in range(32): sys.stdout.buffer.write(b)',
        'sys.stdout.flush()',
        'sys.stderr.write(repr(time.time()))',
      ].join('\n');
      const res = await post({ code, maxOutputBytes: 64 << 20 }, 'application/x-ndjson');
      expect(res.status).toBe(200);
      let resumedAt = 0;
      let first = true;
      let stdoutBytes = 0;
      let doneAt = 0;
      await readLines(
        res,
        'ndjson',
        () => undefined,
        async (line) => {
          if (line.type === 'output' && line.stream === 'stdout') {
            stdoutBytes += Buffer.byteLength(line.text as string);
          }
          if (line.type === 'output' && line.stream === 'stderr') doneAt = Number(line.text) * 1000;
          if (first) {
            first = false;
            await sleep(1500);
            resumedAt = Date.now();
          }
        },
      );
      expect(stdoutBytes).toBe(32 << 20);
      expect(doneAt).toBeGreaterThan(resumedAt);
    });

    it('a failure before the first byte is the usual error answer', async () => {
      const res = await post({ cmd: ['x'], timeoutMs: 10_000_000 }, 'application/x-ndjson');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'INVALID_REQUEST' });
    });
  },
);
