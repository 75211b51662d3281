/**
 * The runner protocol's frames (docs/runner-protocol.md), host side: encoding of what the host sends and a
 * strict, incremental decoder of what the runner sends. Nothing the runner sends is trusted: every rule the
 * decoder checks is a violation with a name (RunnerViolation), after which the container is killed.
 */

export const RUNNER_PROTOCOL_VERSION = 3;

/** u32 payload length, u8 type, u32 job id. */
export const FRAME_HEADER_BYTES = 9;

export const HostFrame = {
  job: 0x01,
  stdin: 0x02,
  stdinEof: 0x03,
  kill: 0x04,
  /** SIGINT to the job (a cell's interpreter, a job's process group). */
  interrupt: 0x05,
  /** Kill every process of the container but the runner (job 0); answered by RESET_DONE. */
  reset: 0x06,
} as const;

export const RunnerFrame = {
  hello: 0x81,
  stdout: 0x82,
  stderr: 0x83,
  exit: 0x84,
  error: 0x85,
  resetDone: 0x86,
  /** A rich output of a running cell (protocol 3): the interpreter's message as the runner checked it. */
  output: 0x87,
} as const;

/** Largest payload the runner may send; output chunks are smaller still. */
export const MAX_RUNNER_PAYLOAD_BYTES = 1024 * 1024;
export const MAX_OUTPUT_CHUNK_BYTES = 65536;
/** Largest JOB header (JSON) and code the runner accepts: beyond them it exits (the container is lost). */
export const MAX_JOB_HEADER_BYTES = 1024 * 1024;
export const MAX_JOB_CODE_BYTES = 64 * 1024 * 1024;
/** Largest STDIN payload the host sends in one frame. */
export const STDIN_CHUNK_BYTES = 1024 * 1024;

const FRAME_NAMES: Record<number, string> = {
  [RunnerFrame.hello]: 'HELLO',
  [RunnerFrame.stdout]: 'STDOUT',
  [RunnerFrame.stderr]: 'STDERR',
  [RunnerFrame.exit]: 'EXIT',
  [RunnerFrame.error]: 'ERROR',
  [RunnerFrame.resetDone]: 'RESET_DONE',
  [RunnerFrame.output]: 'OUTPUT',
};

export function frameName(type: number): string {
  return FRAME_NAMES[type] ?? `unknown type 0x${type.toString(16).padStart(2, '0')}`;
}

/** A rule of the protocol the container broke; the message names it. */
export class RunnerViolation extends Error {}

/** A job the runner would refuse by its size (it would exit): the request's fault, named by its field. */
export class JobTooLargeError extends Error {
  constructor(
    readonly field: 'cmd' | 'env' | 'code',
    readonly detail: string,
  ) {
    super(`${field} ${detail}`);
  }
}

export function encodeFrame(type: number, jobId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.writeUInt8(type, 4);
  frame.writeUInt32BE(jobId, 5);
  if (payload) payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export interface JobHeader {
  /** `cell`: code run in the container's persistent interpreter (sessions). */
  kind: 'code' | 'cmd' | 'cell';
  /** A cell's filename (`<cell-N>`). */
  name?: string;
  /** A cmd of a session: run in the interpreter's cwd and environment. */
  session?: boolean;
  /** A session cmd's own variables, laid over the interpreter's environment. */
  extraEnv?: string[];
  argv?: string[];
  /** The whole environment of the job (`KEY=value`). */
  env: string[];
  workdir: string;
  lineBuffered: boolean;
  /**
   * A cell's rich output caps (protocol 3): at most `max` outputs of at most `maxBytes` bytes in all (text as
   * UTF-8, images decoded, JSON serialized). Left out: no rich outputs.
   */
  outputs?: { max: number; maxBytes: number };
}

/** JOB: `u32 jsonLength`, the JSON header, then the code bytes. */
/** A lone UTF-16 surrogate (a JS string may hold one; UTF-8 cannot). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The JOB frame; with `eof`, the job's STDIN_EOF frame right after it in the same buffer (a job without stdin: one
 * write, one allocation).
 */
export function encodeJob(jobId: number, header: JobHeader, code?: Buffer, eof = false): Buffer {
  // Lone surrogates become U+FFFD, as the engine's JSON decoding makes them for an exec: sent as `\ud800` escapes,
  // the runner could not encode them for the kernel and reported an exec failure (a lost container on the host).
  // JSON.stringify writes a lone surrogate as a `\udXXX` escape (and nothing else with `\ud` but an escaped
  // backslash before it): only a header that shows one is encoded again with the replacer.
  let text = JSON.stringify(header);
  if (text.includes('\\ud')) {
    text = JSON.stringify(header, (_key, v: unknown) =>
      typeof v === 'string' ? v.replace(LONE_SURROGATE, '\uFFFD') : v,
    );
  }
  const jsonBytes = Buffer.byteLength(text, 'utf8');
  // The runner exits on a larger one (it ends the container and every job in it): a request error instead.
  if (jsonBytes > MAX_JOB_HEADER_BYTES) {
    const argvBytes = Buffer.byteLength(JSON.stringify(header.argv ?? []));
    const envBytes = Buffer.byteLength(JSON.stringify(header.env));
    throw new JobTooLargeError(
      argvBytes > envBytes ? 'cmd' : 'env',
      `with the job's other fields it takes ${jsonBytes} bytes as JSON; the runner takes at most ` +
        `${MAX_JOB_HEADER_BYTES}`,
    );
  }
  if ((code?.length ?? 0) > MAX_JOB_CODE_BYTES) {
    throw new JobTooLargeError(
      'code',
      `is ${code!.length} bytes; the runner takes at most ${MAX_JOB_CODE_BYTES}`,
    );
  }
  const codeBytes = code?.length ?? 0;
  const payloadBytes = 4 + jsonBytes + codeBytes;
  const frame = Buffer.allocUnsafe(
    FRAME_HEADER_BYTES + payloadBytes + (eof ? FRAME_HEADER_BYTES : 0),
  );
  frame.writeUInt32BE(payloadBytes, 0);
  frame.writeUInt8(HostFrame.job, 4);
  frame.writeUInt32BE(jobId, 5);
  frame.writeUInt32BE(jsonBytes, FRAME_HEADER_BYTES);
  frame.write(text, FRAME_HEADER_BYTES + 4, 'utf8');
  if (codeBytes) code!.copy(frame, FRAME_HEADER_BYTES + 4 + jsonBytes);
  if (eof) {
    const at = FRAME_HEADER_BYTES + payloadBytes;
    frame.writeUInt32BE(0, at);
    frame.writeUInt8(HostFrame.stdinEof, at + 4);
    frame.writeUInt32BE(jobId, at + 5);
  }
  return frame;
}

/** STDIN frames of at most STDIN_CHUNK_BYTES each, then STDIN_EOF. */
export function encodeStdin(jobId: number, data: Buffer | null): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; data && at < data.length; at += STDIN_CHUNK_BYTES) {
    frames.push(encodeFrame(HostFrame.stdin, jobId, data.subarray(at, at + STDIN_CHUNK_BYTES)));
  }
  frames.push(encodeFrame(HostFrame.stdinEof, jobId));
  return frames;
}

export interface Hello {
  protocol: number;
  runner: string;
  python: string;
  oomKills: number | null;
}

export interface ExitReport {
  /** As `docker exec` reports it: the exit code, or 128 + the signal's number. */
  status: number;
  oomKills: number | null;
  /** The counter when the runner started the job (undefined from a runner that does not say). */
  oomKillsAtStart?: number | null;
  /** A cell job's: which interpreter ran it, whether it lives on, and its report (the user code's word). */
  cell?: CellExit;
}

/** The error a cell's code raised, as its interpreter reported it (the user code's own word). */
export interface CellError {
  name: string;
  value: string;
  traceback: string;
}

export interface CellExit {
  /** 1 for the container's first interpreter, +1 for each one started after it. */
  interpreter: number;
  /** The interpreter still runs after the cell. */
  alive: boolean;
  /** null: the interpreter did not report (it died). */
  report: { error: CellError | null } | null;
  /** The cell's `out` messages the runner counted instead of forwarding them (0 from an older runner). */
  outputsDropped: number;
}

/** The MIME types a rich output may carry (docs/runner-protocol.md, protocol 3). */
export const OUTPUT_MIME_TYPES = [
  'text/plain',
  'text/html',
  'text/markdown',
  'text/latex',
  'image/svg+xml',
  'image/png',
  'image/jpeg',
  'application/json',
] as const;
export type OutputMimeType = (typeof OUTPUT_MIME_TYPES)[number];
const OUTPUT_MIME_SET: ReadonlySet<string> = new Set(OUTPUT_MIME_TYPES);

/**
 * One OUTPUT frame as the runner forwards it: `data` null is a drop mark (the interpreter dropped this output and
 * every later one); otherwise every value is a string (images as base64, unchecked here) but `application/json`'s,
 * which is any JSON value. What is in `data` is the user code's own word.
 */
export interface OutputMessage {
  type: 'result' | 'display';
  data: ({ 'text/plain': string } & Partial<Record<OutputMimeType, unknown>>) | null;
}

/** Limits of a cell report's strings (the runner truncates; longer is a violation). */
export const CELL_ERROR_LIMITS = { name: 256, value: 65536, traceback: 262144 } as const;

export interface ErrorReport {
  what: 'exec' | 'chdir' | 'spawn';
  errno: number;
  message: string;
}

export interface DecodedFrame {
  type: number;
  jobId: number;
  payload: Buffer;
}

const isCount = (v: unknown): v is number | null =>
  v === null || (Number.isSafeInteger(v) && (v as number) >= 0);

function parseJson(frame: DecodedFrame): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(frame.payload.toString('utf8'));
  } catch {
    throw new RunnerViolation(`${frameName(frame.type)} frame whose payload is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RunnerViolation(`${frameName(frame.type)} frame whose payload is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

export function parseHello(frame: DecodedFrame): Hello {
  const v = parseJson(frame);
  if (frame.jobId !== 0) throw new RunnerViolation(`HELLO frame for job ${frame.jobId}`);
  if (
    !Number.isSafeInteger(v.protocol) ||
    typeof v.runner !== 'string' ||
    typeof v.python !== 'string' ||
    !isCount(v.oomKills ?? null)
  ) {
    throw new RunnerViolation('HELLO frame of the wrong shape');
  }
  return {
    protocol: v.protocol as number,
    runner: v.runner.slice(0, 64),
    python: v.python.slice(0, 64),
    oomKills: (v.oomKills ?? null) as number | null,
  };
}

export function parseExit(frame: DecodedFrame): ExitReport {
  const v = parseJson(frame);
  const status = v.status;
  if (!Number.isSafeInteger(status) || (status as number) < 0 || (status as number) > 255) {
    throw new RunnerViolation(`EXIT frame with status ${JSON.stringify(status)} (not 0..255)`);
  }
  if (!isCount(v.oomKills ?? null) || !isCount(v.oomKillsAtStart ?? null)) {
    throw new RunnerViolation('EXIT frame of the wrong shape');
  }
  const exit: ExitReport = {
    status: status as number,
    oomKills: (v.oomKills ?? null) as number | null,
    oomKillsAtStart: (v.oomKillsAtStart ?? null) as number | null,
  };
  if (v.interpreter !== undefined || v.alive !== undefined || v.report !== undefined) {
    exit.cell = parseCellExit(v);
  }
  return exit;
}

function parseCellExit(v: Record<string, unknown>): CellExit {
  const interpreter = v.interpreter;
  if (!Number.isSafeInteger(interpreter) || (interpreter as number) < 1) {
    throw new RunnerViolation(
      `EXIT frame of a cell with interpreter ${JSON.stringify(interpreter)}`,
    );
  }
  if (typeof v.alive !== 'boolean') throw new RunnerViolation('EXIT frame of a cell without alive');
  // An older runner (protocol 2) says nothing: none dropped.
  const dropped = v.outputsDropped ?? 0;
  if (!isCount(dropped)) {
    throw new RunnerViolation(
      `EXIT frame of a cell with outputsDropped ${String(JSON.stringify(dropped)).slice(0, 40)} (not a count)`,
    );
  }
  const outputsDropped = dropped;
  const report = v.report;
  if (report === null) {
    return { interpreter: interpreter as number, alive: v.alive, report: null, outputsDropped };
  }
  if (typeof report !== 'object' || report === undefined || Array.isArray(report)) {
    throw new RunnerViolation('EXIT frame of a cell whose report is not an object');
  }
  const error = (report as Record<string, unknown>).error;
  if (error === null || error === undefined) {
    return {
      interpreter: interpreter as number,
      alive: v.alive,
      report: { error: null },
      outputsDropped,
    };
  }
  const e = error as Record<string, unknown>;
  const ok =
    typeof e === 'object' &&
    !Array.isArray(e) &&
    (Object.keys(CELL_ERROR_LIMITS) as (keyof typeof CELL_ERROR_LIMITS)[]).every(
      (k) => typeof e[k] === 'string' && e[k].length <= CELL_ERROR_LIMITS[k],
    );
  if (!ok) throw new RunnerViolation('EXIT frame of a cell whose error report has the wrong shape');
  return {
    interpreter: interpreter as number,
    alive: v.alive,
    report: {
      error: { name: e.name as string, value: e.value as string, traceback: e.traceback as string },
    },
    outputsDropped,
  };
}

/**
 * OUTPUT: exactly the keys `t` (`"out"`), `type` and `data`; `data` null (a drop mark) or an object of known MIME
 * types with string values (`application/json`: any JSON value) and a `text/plain`. Anything else is a violation:
 * the runner forwards only what it checked.
 */
export function parseOutput(frame: DecodedFrame): OutputMessage {
  const v = parseJson(frame);
  const keys = Object.keys(v);
  if (keys.length !== 3 || v.t !== 'out' || !('type' in v) || !('data' in v)) {
    throw new RunnerViolation(
      `OUTPUT frame of the wrong shape (keys ${JSON.stringify(keys.slice(0, 8))}; expected exactly t, type, data)`,
    );
  }
  if (v.type !== 'result' && v.type !== 'display') {
    throw new RunnerViolation(
      `OUTPUT frame of type ${String(JSON.stringify(v.type)).slice(0, 40)} (not result or display)`,
    );
  }
  const data = v.data;
  if (data === null) return { type: v.type, data: null };
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new RunnerViolation('OUTPUT frame whose data is neither null nor an object');
  }
  const entries = data as Record<string, unknown>;
  for (const [mime, value] of Object.entries(entries)) {
    if (!OUTPUT_MIME_SET.has(mime)) {
      throw new RunnerViolation(
        `OUTPUT frame with the MIME type ${JSON.stringify(mime.slice(0, 64))}`,
      );
    }
    if (mime !== 'application/json' && typeof value !== 'string') {
      throw new RunnerViolation(`OUTPUT frame whose ${mime} is not a string`);
    }
  }
  if (typeof entries['text/plain'] !== 'string') {
    throw new RunnerViolation('OUTPUT frame without text/plain');
  }
  return { type: v.type, data: entries as OutputMessage['data'] };
}

/** RESET_DONE: how many processes but PID 1 were left (0: the reset worked). */
export function parseResetDone(frame: DecodedFrame): { left: number } {
  const v = parseJson(frame);
  if (frame.jobId !== 0) throw new RunnerViolation(`RESET_DONE frame for job ${frame.jobId}`);
  if (!Number.isSafeInteger(v.left) || (v.left as number) < 0) {
    throw new RunnerViolation('RESET_DONE frame of the wrong shape');
  }
  return { left: v.left as number };
}

export function parseError(frame: DecodedFrame): ErrorReport {
  const v = parseJson(frame);
  if (
    (v.what !== 'exec' && v.what !== 'chdir' && v.what !== 'spawn') ||
    !Number.isSafeInteger(v.errno) ||
    typeof v.message !== 'string'
  ) {
    throw new RunnerViolation('ERROR frame of the wrong shape');
  }
  return { what: v.what, errno: v.errno as number, message: v.message.slice(0, 512) };
}

/**
 * Incremental decoder of the runner's stdout: feed it the reassembled stream in chunks of any size; it calls
 * `onFrame` once per complete frame, in order, and throws RunnerViolation (and stays failed) on a payload over
 * the limits or a type the protocol does not have. Output payloads are views of the input when a frame lies in
 * one chunk (no copy).
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private payload: Buffer | null = null;
  private payloadFill = 0;
  private current: { type: number; jobId: number; length: number } | null = null;
  private failed: RunnerViolation | null = null;

  constructor(private readonly onFrame: (frame: DecodedFrame) => void) {}

  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    try {
      this.consume(chunk);
    } catch (err) {
      if (err instanceof RunnerViolation) this.failed = err;
      throw err;
    }
  }

  /** Whether the stream ended between frames (a partial frame at the end is a violation of its own). */
  get idle(): boolean {
    return this.headerFill === 0 && this.current === null;
  }

  private consume(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.current) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        this.headerFill = 0;
        const length = this.header.readUInt32BE(0);
        const type = this.header.readUInt8(4);
        const jobId = this.header.readUInt32BE(5);
        if (!FRAME_NAMES[type]) throw new RunnerViolation(`a frame of ${frameName(type)}`);
        const max =
          type === RunnerFrame.stdout || type === RunnerFrame.stderr
            ? MAX_OUTPUT_CHUNK_BYTES
            : MAX_RUNNER_PAYLOAD_BYTES;
        if (length > max) {
          throw new RunnerViolation(
            `a ${frameName(type)} frame of ${length} bytes (at most ${max})`,
          );
        }
        if ((type === RunnerFrame.stdout || type === RunnerFrame.stderr) && length === 0) {
          throw new RunnerViolation(`an empty ${frameName(type)} frame`);
        }
        this.current = { type, jobId, length };
        if (length === 0) {
          this.emit(Buffer.alloc(0));
          continue;
        }
        // The whole payload in this chunk: hand on a view.
        if (chunk.length - at >= length) {
          const payload = chunk.subarray(at, at + length);
          at += length;
          this.emit(payload);
          continue;
        }
        this.payload = Buffer.allocUnsafe(length);
        this.payloadFill = 0;
      }
      const cur = this.current;
      const payload = this.payload!;
      const take = Math.min(cur.length - this.payloadFill, chunk.length - at);
      chunk.copy(payload, this.payloadFill, at, at + take);
      this.payloadFill += take;
      at += take;
      if (this.payloadFill === cur.length) {
        this.payload = null;
        this.emit(payload);
      }
    }
  }

  private emit(payload: Buffer): void {
    const { type, jobId } = this.current!;
    this.current = null;
    this.onFrame({ type, jobId, payload });
  }
}
