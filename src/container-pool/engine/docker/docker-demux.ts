import { Writable } from 'node:stream';

/** How much of each stream is kept to explain an exec the engine could not start (its message is short). */
const HEAD_BYTES = 2048;
const HEADER_BYTES = 8;

/**
 * Splits the engine's multiplexed attach stream (`Tty: false`: frames of an 8-byte header, stream type then a
 * big-endian payload size, and the payload) into stdout and stderr, honouring backpressure both ways, which
 * dockerode's `modem.demuxStream` does not: when a target's `write()` returns false, the frame's rest waits for
 * its `drain`, and this Writable's own write callback waits too, so a `source.pipe(demuxer)` pauses the socket
 * and the program blocks on its writes instead of the service buffering without bound. Payloads are handed on
 * as views of the socket's chunks (no copy). It keeps the first bytes of each stream (`head`).
 */
export class DockerDemuxer extends Writable {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  /** Payload bytes left in the current frame, and where they go. */
  private left = 0;
  private target: Writable | null = null;
  private readonly heads: [Buffer[], Buffer[]] = [[], []];
  private readonly headBytes = [0, 0];

  constructor(
    private readonly stdout: Writable,
    private readonly stderr: Writable,
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (e?: Error | null) => void) {
    this.consume(chunk, 0, callback);
  }

  private consume(chunk: Buffer, from: number, callback: (e?: Error | null) => void): void {
    let at = from;
    while (at < chunk.length) {
      if (this.left === 0) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < HEADER_BYTES) break;
        this.headerFill = 0;
        // 1 stdout, 2 stderr (0 stdin and 3 the engine's own errors never come from an exec; kept on stderr).
        this.target = this.header[0] === 1 ? this.stdout : this.stderr;
        this.left = this.header.readUInt32BE(4);
        continue;
      }
      const take = Math.min(this.left, chunk.length - at);
      const payload = chunk.subarray(at, at + take);
      at += take;
      this.left -= take;
      const target = this.target!;
      this.keepHead(target === this.stdout ? 0 : 1, payload);
      if (!target.write(payload)) {
        // The consumer is behind: go on with the rest of the chunk (and take the next) once it drained.
        target.once('drain', () => this.consume(chunk, at, callback));
        return;
      }
    }
    callback();
  }

  private keepHead(i: 0 | 1, payload: Buffer): void {
    if (this.headBytes[i] >= HEAD_BYTES) return;
    const part = Buffer.from(payload.subarray(0, HEAD_BYTES - this.headBytes[i]));
    this.heads[i].push(part);
    this.headBytes[i] += part.length;
  }

  /** The first bytes of each stream (to explain an exec the engine refused). */
  get head(): { stdout: Buffer; stderr: Buffer } {
    return { stdout: Buffer.concat(this.heads[0]), stderr: Buffer.concat(this.heads[1]) };
  }
}
