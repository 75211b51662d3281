import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { StreamableFile } from '@nestjs/common';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { OnOutput, OutputChunk } from '../interfaces/output-event.interface';
import { errorResponseOf } from './filters/container-pool-error.filter';
import { toExecResultDto } from './mappers';

export const NDJSON = 'application/x-ndjson';
export const EVENT_STREAM = 'text/event-stream';

/** How long a streamed execution may stay silent before a keepalive line (mutable for tests). */
export const streamTiming = { keepaliveMs: 15_000 };

/** Bytes of lines held for a slow client before the container's output pauses. */
const LINES_HIGH_WATER_BYTES = 64 * 1024;

export type StreamFormat = 'ndjson' | 'sse';

/** What the OpenAPI document says of the streamed answers. */
export const STREAMED_DESCRIPTION =
  'With `Accept: application/x-ndjson` (or `text/event-stream`: each line is an SSE `data:` event) the answer ' +
  'streams one JSON line per event as the output arrives: `{"type":"output","stream":"stdout","offset":0,' +
  '"text":"..."}` (`base64` in place of `text` when the chunk is not valid UTF-8 or outputEncoding is base64; ' +
  'only kept bytes, up to maxOutputBytes), `{"type":"keepalive"}` after 15 s of silence, then exactly one ' +
  '`{"type":"result","result":{...}}` (the JSON answer) or, when the execution fails after the first byte ' +
  '(the status is then already 200), one `{"type":"error","error":{...}}` (the error body). A failure before ' +
  'the first byte is the usual error answer. A client that reads slowly pauses the program; one that ' +
  'disconnects kills it.';

/** An OpenAPI reference to a component schema. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** One streamed line, as an OpenAPI schema (its result line's result of `result`). */
const streamLineSchema = (result: object) => ({
  oneOf: [
    {
      type: 'object',
      required: ['type', 'stream', 'offset'],
      properties: {
        type: { type: 'string', enum: ['output'] },
        stream: { type: 'string', enum: ['stdout', 'stderr'] },
        offset: { type: 'integer', description: 'byte offset of the chunk in its stream' },
        text: { type: 'string', description: 'the chunk, when it is valid UTF-8' },
        base64: { type: 'string', description: 'the chunk as base64 otherwise' },
      },
    },
    { type: 'object', properties: { type: { type: 'string', enum: ['keepalive'] } } },
    {
      type: 'object',
      required: ['type', 'result'],
      properties: { type: { type: 'string', enum: ['result'] }, result },
    },
    {
      type: 'object',
      required: ['type', 'error'],
      properties: { type: { type: 'string', enum: ['error'] }, error: ref('ErrorBodyDto') },
    },
  ],
});

/**
 * The 200 answer's media types: the JSON result, and the streamed lines of both formats. `result` is the
 * result's schema (default ExecResultDto's), e.g. a `oneOf` of a session call's two results.
 */
export function streamedContent(result: object = ref('ExecResultDto')) {
  return {
    'application/json': { schema: result },
    [NDJSON]: {
      schema: {
        ...streamLineSchema(result),
        description: 'one JSON object per line (newline-delimited)',
      },
    },
    [EVENT_STREAM]: {
      schema: {
        type: 'string',
        description: 'server-sent events: `data: <one of the NDJSON lines>` then a blank line',
      },
    },
  };
}

/**
 * The streamed format an `Accept` header asks for, or null for the JSON answer: `application/x-ndjson` or
 * `text/event-stream` ranked (by q, then order; `q=0` excluded) ahead of, or instead of, `application/json`.
 */
export function streamFormatOf(accept: string | string[] | undefined): StreamFormat | null {
  const header = Array.isArray(accept) ? accept.join(',') : (accept ?? '');
  // The highest q wins (RFC 9110); for equal q, the one listed first.
  const ranked = header
    .split(',')
    .map((part, index) => {
      const [type, ...params] = part.trim().toLowerCase().split(';');
      const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p)).find(Boolean);
      const weight = q ? Number(q[1]) : 1;
      return { media: type.trim(), q: Number.isFinite(weight) ? weight : 0, index };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { media } of ranked) {
    if (media === NDJSON) return 'ndjson';
    if (media === EVENT_STREAM) return 'sse';
    if (media === 'application/json') return null;
  }
  return null;
}

/** One output event as a JSON line's object: its bytes as `text` when valid UTF-8 (unless base64 is asked). */
export function outputLine(chunk: OutputChunk, encoding: 'text' | 'base64') {
  const base = { type: 'output', stream: chunk.stream, offset: chunk.offset };
  return encoding === 'text' && isUtf8(chunk.data)
    ? { ...base, text: chunk.data.toString('utf8') }
    : { ...base, base64: chunk.data.toString('base64') };
}

/**
 * Runs an execution whose answer is a stream of lines (NDJSON, or SSE `data:` events): output lines as output
 * arrives (a slow client pauses the container's output), one result line, or one error line when the run fails
 * after the first byte; a keepalive line after every `keepaliveMs` of silence. Resolves with the answer once its
 * first line is ready (the status is then 200), so that a failure before any byte (no container, invalid)
 * rejects and is answered as every error is.
 */
export function streamExecution<R extends ExecResult = ExecResult>(options: {
  format: StreamFormat;
  encoding: 'text' | 'base64';
  run: (onOutput: OnOutput) => Promise<R>;
  /** The result line's `result` (default toExecResultDto's). */
  toResult?: (result: R, encoding: 'text' | 'base64') => object;
  /** The run failed after the first byte (its error line is written). */
  onLateError?: (err: unknown) => void;
  /** How long the acquire may wait: no keepalive opens the answer before it has had its chance to fail. */
  acquireTimeoutMs?: number;
}): Promise<StreamableFile> {
  const { format, encoding } = options;
  // Producers waiting for the client to read: one per stream (stdout and stderr may both wait).
  const producers: (() => void)[] = [];
  const wake = () => {
    for (const w of producers.splice(0)) w();
  };
  const lines = new Readable({ highWaterMark: LINES_HIGH_WATER_BYTES, read: wake });
  lines.on('close', wake);
  let opened = false;
  let open!: () => void;
  let failEarly!: (err: unknown) => void;
  const answer = new Promise<StreamableFile>((resolve, reject) => {
    open = () => {
      if (opened) return;
      opened = true;
      const type =
        format === 'ndjson' ? `${NDJSON}; charset=utf-8` : `${EVENT_STREAM}; charset=utf-8`;
      resolve(new StreamableFile(lines, { type }));
    };
    failEarly = reject;
  });

  let keepalive: NodeJS.Timeout | undefined;
  /** The last line is written (or the client is gone): no keepalive after it. */
  let ended = false;
  const armKeepalive = () => {
    clearTimeout(keepalive);
    if (ended) return;
    // Before the first line, not until the acquire has had its chance to fail: an error before the first
    // byte is the usual error answer, not a 200 with keepalives and an error line.
    const delay = opened
      ? streamTiming.keepaliveMs
      : Math.max(streamTiming.keepaliveMs, (options.acquireTimeoutMs ?? 0) + 1000);
    keepalive = setTimeout(() => void write({ type: 'keepalive' }, false), delay);
  };
  lines.on('close', () => {
    ended = true;
    clearTimeout(keepalive);
  });
  /** Writes a line; a producer's write (`wait`) waits for room, a keepalive never does. */
  const write = (line: object, wait = true): void | Promise<void> => {
    if (lines.destroyed || lines.readableEnded) return;
    const json = JSON.stringify(line);
    const more = lines.push(format === 'ndjson' ? `${json}\n` : `data: ${json}\n\n`);
    open();
    armKeepalive();
    if (more || !wait) return;
    return new Promise<void>((resolve) => producers.push(resolve));
  };
  armKeepalive();

  options
    .run((chunk) => write(outputLine(chunk, encoding)))
    .then(
      (result) => {
        ended = true;
        clearTimeout(keepalive);
        const toResult = options.toResult ?? toExecResultDto;
        void write({ type: 'result', result: toResult(result, encoding) });
        lines.push(null);
      },
      (err: unknown) => {
        ended = true;
        clearTimeout(keepalive);
        if (!opened) return failEarly(err);
        options.onLateError?.(err);
        void write({ type: 'error', error: errorResponseOf(err).body });
        lines.push(null);
      },
    );
  return answer;
}
