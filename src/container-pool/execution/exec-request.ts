import { InvalidRequestError } from '../errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';
import type { ExecOptions, RunRequest } from '../interfaces/run-request.interface';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The limits a request is checked against. */
export type ExecLimits = Pick<
  ResolvedContainerPoolOptions,
  'execTimeoutMs' | 'maxExecTimeoutMs' | 'maxOutputBytes' | 'maxStdinBytes' | 'workdir'
> &
  Partial<Pick<ResolvedContainerPoolOptions, 'maxOutputs'>>;

/** One execution, checked and completed: `cmd` for argv, `code` for Python source. */
export interface NormalizedExec {
  cmd?: string[];
  code?: Buffer;
  stdin: Buffer | null;
  env: string[];
  workdir: string;
  timeoutMs: number;
  maxOutputBytes: number;
}

/** The shape rules the HTTP DTO cannot know: they depend on the pool's limits, or tie two fields together. */
interface LimitFields {
  cmd?: unknown;
  code?: unknown;
  language?: unknown;
  timeoutMs?: unknown;
  maxOutputBytes?: unknown;
  /** A session code call's (runCode). */
  maxOutputs?: unknown;
}

/**
 * Every problem of a request against the pool's limits, in field order (empty when it is fine): the one list the
 * library and the HTTP edge share. Values of the wrong type are left to the type checks.
 */
export function limitProblems(request: LimitFields, limits: ExecLimits): InvalidRequestError[] {
  const problems: InvalidRequestError[] = [];
  if ((request.cmd === undefined) === (request.code === undefined)) {
    problems.push(
      new InvalidRequestError(
        'cmd',
        'or code: give exactly one of cmd (argv) and code (source text)',
      ),
    );
  }
  if (request.language !== undefined && request.code === undefined) {
    problems.push(new InvalidRequestError('language', 'is only allowed with code'));
  }
  if (typeof request.timeoutMs === 'number' && request.timeoutMs > limits.maxExecTimeoutMs) {
    problems.push(
      new InvalidRequestError(
        'timeoutMs',
        `must not be greater than maxExecTimeoutMs (${limits.maxExecTimeoutMs})`,
      ),
    );
  }
  if (
    typeof request.maxOutputBytes === 'number' &&
    request.maxOutputBytes > limits.maxOutputBytes
  ) {
    problems.push(
      new InvalidRequestError(
        'maxOutputBytes',
        `must not be greater than the pool's maxOutputBytes (${limits.maxOutputBytes})`,
      ),
    );
  }
  const outputs = maxOutputsProblem(request.maxOutputs, limits);
  if (outputs) problems.push(outputs);
  return problems;
}

/** A call's `maxOutputs` above the profile's (a number of the wrong kind is left to the type checks). */
function maxOutputsProblem(
  value: unknown,
  limits: Partial<Pick<ResolvedContainerPoolOptions, 'maxOutputs'>>,
): InvalidRequestError | null {
  if (typeof value !== 'number' || limits.maxOutputs === undefined || value <= limits.maxOutputs) {
    return null;
  }
  return new InvalidRequestError(
    'maxOutputs',
    `must not be greater than the profile's maxOutputs (${limits.maxOutputs})`,
  );
}

/** A session code call's `maxOutputs`: an integer from 0 up to the profile's, which is the default. */
export function normalizeMaxOutputs(
  value: unknown,
  limits: Pick<ResolvedContainerPoolOptions, 'maxOutputs'>,
): number {
  if (value === undefined) return limits.maxOutputs;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidRequestError('maxOutputs', `must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < 0)
    throw new InvalidRequestError('maxOutputs', `must not be less than 0, got ${value}`);
  const problem = maxOutputsProblem(value, limits);
  if (problem) throw problem;
  return value;
}

/** A problem as one sentence naming its field, e.g. `timeoutMs must not be greater than ...`. */
export function problemText(problem: InvalidRequestError): string {
  const joined = /^(must|is|are) /.test(problem.detail) ? ' ' : ': ';
  return `${problem.field}${joined}${problem.detail}`;
}

function assertPositiveInt(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidRequestError(field, `must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < 1) throw new InvalidRequestError(field, `must not be less than 1, got ${value}`);
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
function normalizeOptions(
  target: { cmd?: string[]; code?: Buffer },
  opts: ExecOptions,
  limits: ExecLimits,
  /** limitProblems() of the request. */
  problems: InvalidRequestError[],
): NormalizedExec {
  const timeoutMs =
    opts.timeoutMs === undefined
      ? limits.execTimeoutMs
      : assertPositiveInt('timeoutMs', opts.timeoutMs);
  const maxOutputBytes =
    opts.maxOutputBytes === undefined
      ? limits.maxOutputBytes
      : assertPositiveInt('maxOutputBytes', opts.maxOutputBytes);
  if (problems.length) throw problems[0];
  let stdin: Buffer | null = null;
  if (opts.stdin !== undefined && opts.stdin !== null) {
    if (typeof opts.stdin === 'string') stdin = Buffer.from(opts.stdin, 'utf8');
    else if (Buffer.isBuffer(opts.stdin)) stdin = opts.stdin;
    else throw new InvalidRequestError('stdin', 'must be a string or a Buffer');
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
  let workdir = limits.workdir;
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
  return { ...target, stdin, env, workdir, timeoutMs, maxOutputBytes };
}

/** run()'s request: exactly one of `cmd` and `code`, and the execution options. */
export function normalizeRunRequest(request: RunRequest, limits: ExecLimits): NormalizedExec {
  if (request === null || typeof request !== 'object') {
    throw new InvalidRequestError('request', 'must be an object with cmd or code');
  }
  const problems = limitProblems(request, limits);
  if (problems[0]?.field === 'cmd' || problems[0]?.field === 'language') throw problems[0];
  if (request.cmd !== undefined) {
    return normalizeOptions({ cmd: validateCmd(request.cmd) }, request, limits, problems);
  }
  if (typeof request.code !== 'string') throw new InvalidRequestError('code', 'must be a string');
  if (request.language !== undefined && request.language !== 'python') {
    throw new InvalidRequestError(
      'language',
      `must be "python", got ${JSON.stringify(request.language)}`,
    );
  }
  return normalizeOptions({ code: Buffer.from(request.code, 'utf8') }, request, limits, problems);
}

/** Container.execute()'s argv and options. */
export function normalizeExecRequest(
  cmd: string[],
  opts: ExecOptions,
  limits: ExecLimits,
): NormalizedExec {
  const target = { cmd: validateCmd(cmd) };
  const problems = limitProblems(
    { ...target, timeoutMs: opts.timeoutMs, maxOutputBytes: opts.maxOutputBytes },
    limits,
  );
  return normalizeOptions(target, opts, limits, problems);
}

/** The program's whole stdin (code frame included) must fit `maxStdinBytes`. */
export function checkStdinSize(bytes: number, isCode: boolean, limits: ExecLimits): void {
  if (bytes > limits.maxStdinBytes) {
    throw new InvalidRequestError(
      isCode ? 'code' : 'stdin',
      `code plus stdin is ${bytes} bytes, above maxStdinBytes (${limits.maxStdinBytes})`,
    );
  }
}
