import type { ExecResult } from '../interfaces/exec-result.interface';
import { Writable } from 'node:stream';
import type { OnOutput } from '../interfaces/output-event.interface';

/** What a sink tells about its kept bytes as they arrive. */
export interface SinkListener {
  stream: 'stdout' | 'stderr';
  onOutput: OnOutput;
  /** The callback threw or rejected: the execution is killed with this error. */
  onError(error: unknown): void;
}

/**
 * Keeps the first `capBytes` bytes written to it and counts (then forgets) the rest, so that a flood of output
 * costs no memory while the stream is still read to its end. Without a listener, writes complete
 * synchronously. With one, every kept piece goes to its `onOutput` (with its offset) before it completes, and a
 * write completes only once a promise returned by `onOutput` settled: a writer honouring `write() === false`
 * and `drain` (the engine's demuxer) then waits for the consumer.
 */
export class CappedSink extends Writable {
  /**
   * The kept bytes, copied: a piece is often a view of a much larger socket chunk (the demuxer and the runner
   * decoder hand views), and keeping the view would pin the whole chunk: a container writing one byte on stdout
   * between floods of another stream made each kept byte hold 64 KiB. Grown by doubling, up to capBytes.
   */
  private store: Buffer | null = null;
  private kept = 0;
  /** Bytes seen beyond the cap. */
  dropped = 0;

  constructor(
    private readonly capBytes: number,
    private readonly listener?: SinkListener,
  ) {
    super({ decodeStrings: true });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ) {
    const room = this.capBytes - this.kept;
    const offset = this.kept;
    let piece: Buffer | null = null;
    if (room >= chunk.length) piece = chunk;
    else {
      if (room > 0) piece = chunk.subarray(0, room);
      this.dropped += chunk.length - Math.max(room, 0);
    }
    if (piece?.length) {
      this.keep(piece);
      this.kept += piece.length;
      // The listener gets the kept copy too: a consumer holding its events (stream()'s queue, bounded by their
      // bytes) must not pin the socket chunks either.
      piece = this.store!.subarray(offset, this.kept);
    }
    if (!piece?.length || !this.listener) return callback();
    const { listener } = this;
    let pending: void | Promise<void>;
    try {
      pending = listener.onOutput({ stream: listener.stream, data: piece, offset });
    } catch (err) {
      listener.onError(err);
      return callback();
    }
    if (!pending || typeof pending.then !== 'function') return callback();
    pending.then(
      () => callback(),
      (err: unknown) => {
        listener.onError(err);
        callback();
      },
    );
  }

  private keep(piece: Buffer): void {
    const need = this.kept + piece.length;
    if (!this.store || this.store.length < need) {
      const size = Math.min(this.capBytes, Math.max(need, 2 * (this.store?.length ?? 0), 4096));
      const grown = Buffer.allocUnsafeSlow(size);
      if (this.store) this.store.copy(grown, 0, 0, this.kept);
      this.store = grown;
    }
    piece.copy(this.store, this.kept);
  }

  /** Resolves once every write so far has completed (its onOutput settled). Ends the sink. */
  flushed(): Promise<void> {
    if (this.writableFinished) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.once('finish', () => resolve());
      if (!this.writableEnded) this.end();
    });
  }

  get bytes(): Buffer {
    return this.store ? this.store.subarray(0, this.kept) : Buffer.alloc(0);
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  /** Every byte written: the kept ones and the dropped ones. */
  get totalBytes(): number {
    return this.kept + this.dropped;
  }
}

/** The output fields of an ExecResult, from an execution's two sinks. */
export function outputFields(
  stdout: CappedSink,
  stderr: CappedSink,
): Pick<
  ExecResult,
  | 'stdout'
  | 'stderr'
  | 'stdoutBytes'
  | 'stderrBytes'
  | 'truncated'
  | 'stdoutTruncated'
  | 'stderrTruncated'
  | 'stdoutTotalBytes'
  | 'stderrTotalBytes'
> {
  const stdoutBytes = stdout.bytes;
  const stderrBytes = stderr.bytes;
  return {
    stdout: stdoutBytes.toString('utf8'),
    stderr: stderrBytes.toString('utf8'),
    stdoutBytes,
    stderrBytes,
    truncated: stdout.truncated || stderr.truncated,
    stdoutTruncated: stdout.truncated,
    stderrTruncated: stderr.truncated,
    stdoutTotalBytes: stdout.totalBytes,
    stderrTotalBytes: stderr.totalBytes,
  };
}
