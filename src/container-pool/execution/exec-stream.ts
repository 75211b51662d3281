import { InvalidRequestError } from '../errors/container-pool.errors';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { ExecStreamEvent, OnOutput, OutputChunk } from '../interfaces/output-event.interface';

/** Output bytes stream() holds for a consumer that has not read them yet, before it pauses the container. */
export const STREAM_HIGH_WATER_BYTES = 256 * 1024;

/** How stream() starts its run: with its own onOutput and a signal that fires when the consumer breaks. */
export type StartRun = (hooks: { onOutput: OnOutput; signal: AbortSignal }) => Promise<ExecResult>;

/**
 * The iterable of stream(): output events as they arrive, then exactly one result event. The run starts at the
 * first `next()`. Output the consumer has not read is held up to STREAM_HIGH_WATER_BYTES; beyond, the run's
 * onOutput waits (the container's stream pauses). Breaking out (`return()`) aborts the run (its container is
 * removed) and resolves once it is over; the run's rejection (an infrastructure error, the caller's abort)
 * rejects the pending `next()`. One iteration only.
 */
export function execStream(
  start: StartRun,
  callerSignal?: AbortSignal,
): AsyncIterable<ExecStreamEvent> {
  let iterated = false;
  return {
    [Symbol.asyncIterator](): AsyncIterator<ExecStreamEvent> {
      if (iterated) throw new InvalidRequestError('stream', 'can be iterated once');
      iterated = true;
      return new ExecStreamIterator(start, callerSignal);
    },
  };
}

class ExecStreamIterator implements AsyncIterator<ExecStreamEvent> {
  private readonly queue: ExecStreamEvent[] = [];
  private queuedBytes = 0;
  private failure: { error: unknown } | null = null;
  private finished = false;
  /** The consumer saw the end (or the failure, or broke out): nothing more is returned. */
  private finishedDone = false;
  private run: Promise<void> | null = null;
  private readonly abort = new AbortController();
  /** The consumer waits for an event. */
  /** Consumers waiting for an event (concurrent next() calls each wait). */
  private consumers: (() => void)[] = [];
  /** The run waits for the consumer to read. */
  /** Producers waiting for room: one per stream (stdout and stderr may both wait). */
  private producers: (() => void)[] = [];

  constructor(
    private readonly start: StartRun,
    private readonly callerSignal?: AbortSignal,
  ) {}

  private begin(): void {
    const onCallerAbort = () => this.abort.abort(this.callerSignal?.reason);
    if (this.callerSignal?.aborted) onCallerAbort();
    else this.callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const started = Promise.resolve().then(() =>
      this.start({ onOutput: (c) => this.push(c), signal: this.abort.signal }),
    );
    this.run = started.then(
      (result) => {
        this.queue.push({ type: 'result', result });
      },
      (error: unknown) => {
        this.failure = { error };
      },
    );
    void this.run.finally(() => {
      this.callerSignal?.removeEventListener('abort', onCallerAbort);
      this.finished = true;
      this.wake();
    });
  }

  private push(chunk: OutputChunk): void | Promise<void> {
    if (this.abort.signal.aborted) return;
    this.queue.push({ type: 'output', ...chunk });
    this.queuedBytes += chunk.data.length;
    this.wake();
    if (this.queuedBytes < STREAM_HIGH_WATER_BYTES) return;
    return new Promise<void>((resolve) => {
      this.producers.push(resolve);
    });
  }

  private wakeProducers(): void {
    for (const w of this.producers.splice(0)) w();
  }

  private wake(): void {
    for (const w of this.consumers.splice(0)) w();
  }

  async next(): Promise<IteratorResult<ExecStreamEvent>> {
    if (!this.run) this.begin();
    for (;;) {
      const event = this.queue.shift();
      if (event) {
        if (event.type === 'output') {
          this.queuedBytes -= event.data.length;
          if (this.queuedBytes < STREAM_HIGH_WATER_BYTES) this.wakeProducers();
        }
        return { value: event, done: false };
      }
      if (this.failure) {
        const { error } = this.failure;
        this.failure = null;
        this.queue.length = 0;
        this.finishedDone = true;
        throw error;
      }
      if (this.finished || this.finishedDone) return { value: undefined, done: true };
      await new Promise<void>((resolve) => this.consumers.push(resolve));
    }
  }

  /** The consumer broke out: abort the run (as its signal would) and wait until it is over. */
  async return(): Promise<IteratorResult<ExecStreamEvent>> {
    this.finishedDone = true;
    if (this.run && !this.finished) {
      this.abort.abort(new Error('the consumer stopped reading'));
      this.wakeProducers();
      await this.run;
    }
    this.queue.length = 0;
    return { value: undefined, done: true };
  }
}
