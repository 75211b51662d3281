import type { CodeOutput, OutputData } from '../interfaces/outputs.interface';
import type { OutputMessage } from '../transport/runner/runner-protocol';

/** Canonical base64 as Python's `base64.b64encode` writes it: no whitespace, padded to a multiple of 4. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/** `application/json` measured as JSON text; a value that cannot be serialized again is dropped (null). */
function jsonBytes(value: unknown): number | null {
  try {
    return Buffer.byteLength(JSON.stringify(value));
  } catch {
    return null;
  }
}

/**
 * One output's entries as the session hands them out, with their size: text entries as they came (UTF-8 bytes),
 * images decoded (an entry that is not canonical base64 is dropped: the user code's word, not the runner's),
 * application/json as it parsed (its JSON text's bytes).
 */
function decode(data: NonNullable<OutputMessage['data']>): { data: OutputData; bytes: number } {
  const out: OutputData = { 'text/plain': data['text/plain'] };
  let bytes = Buffer.byteLength(out['text/plain']);
  for (const mime of ['text/html', 'text/markdown', 'text/latex', 'image/svg+xml'] as const) {
    const text = data[mime];
    if (typeof text !== 'string') continue;
    out[mime] = text;
    bytes += Buffer.byteLength(text);
  }
  for (const mime of ['image/png', 'image/jpeg'] as const) {
    const text = data[mime];
    const image = typeof text === 'string' ? decodeBase64(text) : null;
    if (!image) continue;
    out[mime] = image;
    bytes += image.length;
  }
  if ('application/json' in data) {
    const size = jsonBytes(data['application/json']);
    if (size !== null) {
      out['application/json'] = data['application/json'];
      bytes += size;
    }
  }
  return { data: out, bytes };
}

/**
 * A cell's rich outputs as they arrive (docs/runner-protocol.md, Cells: rich outputs): kept in order while they
 * fit the call's caps (`maxOutputs` outputs, `maxOutputBytes` bytes in all, measured as the interpreter measures
 * them); the first that does not fit, a drop mark, and everything after are dropped. Once full it only notes
 * that more came (no decoding), so a flood costs next to nothing.
 */
export class OutputCollector {
  private readonly kept: CodeOutput[] = [];
  private bytes = 0;
  /** An output did not fit (or a drop mark came): nothing more is kept. */
  private full = false;

  constructor(
    private readonly maxOutputs: number,
    private readonly maxBytes: number,
  ) {}

  add(message: OutputMessage): void {
    if (this.full) return;
    if (message.data === null || this.kept.length >= this.maxOutputs) {
      this.full = true;
      return;
    }
    const { data, bytes } = decode(message.data);
    if (this.bytes + bytes > this.maxBytes) {
      this.full = true;
      return;
    }
    this.kept.push({ type: message.type, data });
    this.bytes += bytes;
  }

  /** The outputs kept, and whether any was dropped (here, by the interpreter, or by the runner: `dropped`). */
  result(dropped: number): { outputs: CodeOutput[]; outputsTruncated: boolean } {
    return { outputs: this.kept, outputsTruncated: this.full || dropped > 0 };
  }
}
