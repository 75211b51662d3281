import type { ExecResult } from './exec-result.interface';

/** A piece of a program's output as it arrives: kept bytes only (nothing beyond `maxOutputBytes`). */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  /** The bytes, exactly as the program wrote them (a chunk may end inside a UTF-8 sequence). */
  data: Buffer;
  /** Byte offset of `data` in its stream; a stream's chunks arrive in order, without gaps. */
  offset: number;
}

/**
 * Called as output arrives. When it returns a promise, no further output is read from the container until it
 * settles (backpressure: the program blocks on its writes); a rejection or a throw kills the execution, which
 * then rejects with that error.
 */
export type OnOutput = (chunk: OutputChunk) => void | Promise<void>;

/** An event of stream(): output chunks, then exactly one result. */
export type ExecStreamEvent =
  ({ type: 'output' } & OutputChunk) | { type: 'result'; result: ExecResult };
