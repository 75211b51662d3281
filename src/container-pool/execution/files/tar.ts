import { Writable } from 'node:stream';

const BLOCK = 512;
const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header of a regular file with a short ASCII name. */
function header(name: string, size: number, mode: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136, 'ascii');
  h.fill(' ', 148, 156);
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** A tar archive of regular files with short names (the staging names `0`, `1`, ...). */
export function tarOf(files: { name: string; content: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(
      header(f.name, f.content.length, 0o600),
      f.content,
      Buffer.alloc(pad(f.content.length)),
    );
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** One member of a tar stream as the parser reports it. */
export interface TarMember {
  name: string;
  /** `0` regular file, `5` dir, `2` symlink, `6` fifo, ... */
  type: string;
  /** As the header says (bytes that follow: counted, never trusted for anything else). */
  size: number;
  mode: number;
  /** The content, when `want` kept it; else null. */
  content: Buffer | null;
}

function parseNumber(field: Buffer): number {
  // GNU base-256 for big values: the first byte's high bit.
  if (field[0] & 0x80) {
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i];
    return v;
  }
  const text = field.toString('ascii').replace(/\0.*$/s, '').trim();
  return text ? parseInt(text, 8) : 0;
}

const cString = (b: Buffer) => {
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
};

/**
 * Parses a tar stream as it arrives (ustar, GNU long names, pax paths), keeping the content of the members
 * `want` accepts, at most `budget` bytes in all; everything else is read and dropped. Writes complete
 * synchronously, so it can be an exec's stdout sink.
 */
export class TarParser extends Writable {
  readonly members: TarMember[] = [];
  /** Bytes of content kept. */
  kept = 0;
  /** The stream ended cleanly (two zero blocks). */
  complete = false;
  private buf: Buffer = Buffer.alloc(0);
  private cur: {
    member: TarMember;
    left: number;
    padLeft: number;
    chunks: Buffer[] | null;
  } | null = null;
  private longName: string | null = null;
  private longKind: 'L' | 'x' | null = null;
  private longChunks: Buffer[] = [];
  private zeroBlocks = 0;

  constructor(
    private readonly want: (name: string, type: string, size: number) => boolean,
    private readonly budget: number,
  ) {
    super();
  }

  override _write(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.drain();
    cb();
  }

  private drain(): void {
    for (;;) {
      if (this.complete) {
        this.buf = Buffer.alloc(0);
        return;
      }
      if (this.cur) {
        const c = this.cur;
        if (c.left > 0) {
          if (!this.buf.length) return;
          const take = this.buf.subarray(0, Math.min(c.left, this.buf.length));
          this.buf = this.buf.subarray(take.length);
          c.left -= take.length;
          if (c.chunks) c.chunks.push(Buffer.from(take));
          else if (this.longKind && this.longChunks.length < 64)
            this.longChunks.push(Buffer.from(take));
          continue;
        }
        if (c.padLeft > 0) {
          if (!this.buf.length) return;
          const n = Math.min(c.padLeft, this.buf.length);
          this.buf = this.buf.subarray(n);
          c.padLeft -= n;
          continue;
        }
        this.finish(c);
        continue;
      }
      if (this.buf.length < BLOCK) return;
      const h = this.buf.subarray(0, BLOCK);
      this.buf = this.buf.subarray(BLOCK);
      if (h.every((b) => b === 0)) {
        if (++this.zeroBlocks >= 2) this.complete = true;
        continue;
      }
      this.zeroBlocks = 0;
      const type = String.fromCharCode(h[156] || 0x30);
      const size = parseNumber(h.subarray(124, 136));
      const mode = parseNumber(h.subarray(100, 108));
      let name = cString(h.subarray(0, 100));
      const prefix =
        h.subarray(257, 262).toString('ascii') === 'ustar' ? cString(h.subarray(345, 500)) : '';
      if (prefix) name = `${prefix}/${name}`;
      if (type === 'L' || type === 'x') {
        this.longKind = type;
        this.longChunks = [];
        this.cur = {
          member: { name, type, size, mode, content: null },
          left: size,
          padLeft: pad(size),
          chunks: null,
        };
        continue;
      }
      if (this.longName !== null) {
        name = this.longName;
        this.longName = null;
      }
      name = name.replace(/^(\.\/)+/, '');
      const member: TarMember = { name, type, size, mode, content: null };
      const keep =
        (type === '0' || type === '\0') &&
        this.kept + size <= this.budget &&
        this.want(name, type, size);
      if (keep) this.kept += size;
      this.cur = { member, left: size, padLeft: pad(size), chunks: keep ? [] : null };
    }
  }

  private finish(c: NonNullable<TarParser['cur']>): void {
    this.cur = null;
    if (c.member.type === 'L' || c.member.type === 'x') {
      const data = Buffer.concat(this.longChunks);
      this.longChunks = [];
      if (c.member.type === 'L') this.longName = cString(data);
      else {
        const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
        if (m) this.longName = m[1];
      }
      this.longKind = null;
      return;
    }
    if (c.chunks) c.member.content = Buffer.concat(c.chunks);
    this.members.push(c.member);
  }
}
