import type { IncomingMessage } from 'node:http';
import { BadRequestException, PayloadTooLargeException } from '@nestjs/common';

/** maxBodyBytes as a body reader applies it: its 413, and whether Content-Length already says more. */
export function bodyLimit(req: IncomingMessage, limit: number) {
  const tooLarge = () =>
    new PayloadTooLargeException(
      `Request body exceeds the limit of ${limit} bytes (maxBodyBytes, POOL_MAX_BODY_BYTES).`,
    );
  const declared = Number(req.headers['content-length']);
  return { limit, tooLarge, declaredOver: Number.isFinite(declared) && declared > limit };
}

/**
 * Reads a request body of at most `limit` bytes, then `onBody(bytes)` (which may refuse it with an error);
 * `next()` once accepted, `fail(error)` otherwise. Beyond the limit, a read error or a client that leaves early:
 * `fail` at once, the rest discarded (the answer does not wait for it).
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: () => unknown,
  onBody: (bytes: Buffer) => unknown,
  next: () => void,
  fail: (error: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let done = false;
  const finish = (error?: unknown) => {
    if (done) return;
    done = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
    if (error === undefined) return next();
    req.resume();
    fail(error);
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit) return finish(tooLarge());
    chunks.push(chunk);
  };
  const onEnd = () => finish(onBody(Buffer.concat(chunks, received)) ?? undefined);
  const onError = (err: Error) =>
    finish(new BadRequestException(`Reading the request body failed: ${err.message}`));
  const onClose = () => {
    if (!req.readableEnded)
      finish(new BadRequestException('The client closed the request before its body ended.'));
  };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
  req.on('close', onClose);
}
