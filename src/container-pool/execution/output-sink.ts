import { Writable } from 'node:stream';

/**
 * Keeps the first `capBytes` bytes written to it and counts (then forgets) the rest, so that a flood of output
 * costs no memory while the stream is still read to its end. Writes complete synchronously.
 */
export class CappedSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  /** Bytes seen beyond the cap. */
  dropped = 0;

  constructor(private readonly capBytes: number) {
    super({ decodeStrings: true });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ) {
    const room = this.capBytes - this.kept;
    if (room >= chunk.length) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
    } else {
      if (room > 0) {
        this.chunks.push(chunk.subarray(0, room));
        this.kept += room;
      }
      this.dropped += chunk.length - Math.max(room, 0);
    }
    callback();
  }

  get bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.kept);
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  /** Every byte written: the kept ones and the dropped ones. */
  get totalBytes(): number {
    return this.kept + this.dropped;
  }
}
