import { InvalidRequestError } from '../errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { ExecOptions, RunRequest } from '../interfaces/run-request.interface';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads the code framed on stdin (`<length>\n<code>`), then runs it as `python3 -c` would, in `__main__`, with
 * the rest of stdin left to the program. Code of any size works (argv is capped at 128 KiB by the kernel).
 */
export const PYTHON_BOOTSTRAP = [
  'def _b():',
  ' import os,sys',
  " h=b''",
  " while not h.endswith(b'\\n'):",
  '  c=os.read(0,1)',
  "  if not c: raise SystemExit('container-pool: truncated code frame')",
  '  h+=c',
  ' n=int(h);b=bytearray()',
  ' while len(b)<n:',
  '  c=os.read(0,min(n-len(b),1<<20))',
  "  if not c: raise SystemExit('container-pool: truncated code frame')",
  '  b+=c',
  " del globals()['_b']",
  " sys.argv[:]=['-c']",
  " return compile(bytes(b),'<string>','exec')",
  'exec(_b())',
].join('\n');

export interface NormalizedExec {
  cmd: string[];
  stdin: Buffer | null;
  env: string[];
  workdir: string;
  timeoutMs: number;
  maxOutputBytes: number;
}

function assertInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidRequestError(field, `must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) {
    throw new InvalidRequestError(field, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

export function validateCmd(cmd: unknown): string[] {
  if (!Array.isArray(cmd) || cmd.length === 0) {
    throw new InvalidRequestError('cmd', 'must be a non-empty array of strings');
  }
  cmd.forEach((part, i) => {
    if (typeof part !== 'string') throw new InvalidRequestError(`cmd[${i}]`, 'must be a string');
    if (part.includes('\0')) throw new InvalidRequestError(`cmd[${i}]`, 'must not contain NUL');
  });
  if (cmd[0] === '') throw new InvalidRequestError('cmd[0]', 'must name a program');
  return cmd as string[];
}

/** Checks and completes the options of one execution against the pool's limits. */
export function normalizeExecOptions(
  cmd: string[],
  opts: ExecOptions,
  o: ResolvedContainerPoolOptions,
  stdinPrefix?: Buffer,
): NormalizedExec {
  validateCmd(cmd);
  const timeoutMs =
    opts.timeoutMs === undefined
      ? o.execTimeoutMs
      : assertInt('timeoutMs', opts.timeoutMs, 1, o.maxExecTimeoutMs);
  const maxOutputBytes =
    opts.maxOutputBytes === undefined
      ? o.maxOutputBytes
      : assertInt('maxOutputBytes', opts.maxOutputBytes, 1, o.maxOutputBytes);
  let stdin: Buffer | null = null;
  if (opts.stdin !== undefined && opts.stdin !== null) {
    if (typeof opts.stdin === 'string') stdin = Buffer.from(opts.stdin, 'utf8');
    else if (Buffer.isBuffer(opts.stdin)) stdin = opts.stdin;
    else throw new InvalidRequestError('stdin', 'must be a string or a Buffer');
  }
  if (stdinPrefix) stdin = stdin ? Buffer.concat([stdinPrefix, stdin]) : stdinPrefix;
  if (stdin && stdin.length > o.maxStdinBytes) {
    throw new InvalidRequestError(
      stdinPrefix ? 'code' : 'stdin',
      `code plus stdin is ${stdin.length} bytes, above maxStdinBytes (${o.maxStdinBytes})`,
    );
  }
  const env: string[] = [];
  if (opts.env !== undefined) {
    if (typeof opts.env !== 'object' || opts.env === null || Array.isArray(opts.env)) {
      throw new InvalidRequestError('env', 'must be an object of string values');
    }
    for (const [k, v] of Object.entries(opts.env)) {
      if (!ENV_NAME.test(k))
        throw new InvalidRequestError(`env.${k}`, 'is not a valid variable name');
      if (typeof v !== 'string') throw new InvalidRequestError(`env.${k}`, 'must be a string');
      if (v.includes('\0')) throw new InvalidRequestError(`env.${k}`, 'must not contain NUL');
      env.push(`${k}=${v}`);
    }
  }
  let workdir = o.workdir;
  if (opts.workdir !== undefined) {
    if (
      typeof opts.workdir !== 'string' ||
      !opts.workdir.startsWith('/') ||
      opts.workdir.includes('\0')
    ) {
      throw new InvalidRequestError('workdir', 'must be an absolute path');
    }
    workdir = opts.workdir;
  }
  return { cmd, stdin, env, workdir, timeoutMs, maxOutputBytes };
}

/** Turns run()'s request into argv plus framed stdin. */
export function toCommand(
  request: RunRequest,
  o: ResolvedContainerPoolOptions,
): { cmd: string[]; stdinPrefix?: Buffer } {
  if (request === null || typeof request !== 'object') {
    throw new InvalidRequestError('request', 'must be an object with cmd or code');
  }
  const hasCmd = request.cmd !== undefined;
  const hasCode = request.code !== undefined;
  if (hasCmd === hasCode) {
    throw new InvalidRequestError('cmd', 'give exactly one of cmd (argv) or code (source text)');
  }
  if (hasCmd) return { cmd: validateCmd(request.cmd) };
  if (typeof request.code !== 'string') throw new InvalidRequestError('code', 'must be a string');
  if (request.language !== undefined && request.language !== 'python') {
    throw new InvalidRequestError(
      'language',
      `must be "python", got ${JSON.stringify(request.language)}`,
    );
  }
  const code = Buffer.from(request.code, 'utf8');
  const stdinPrefix = Buffer.concat([Buffer.from(`${code.length}\n`, 'ascii'), code]);
  return { cmd: [...o.pythonCommand, '-c', PYTHON_BOOTSTRAP], stdinPrefix };
}
