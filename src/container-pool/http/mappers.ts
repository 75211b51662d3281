import { isUtf8 } from 'node:buffer';
import type { ContainerInfo } from '../interfaces/container.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { RunFile } from '../interfaces/files.interface';
import type { CodeOutput } from '../interfaces/outputs.interface';
import type { CodeResult, SessionExecResult, SessionInfo } from '../interfaces/session.interface';
import type { ContainerInfoDto, ExecResultDto } from './dto/responses.dto';
import type {
  CodeOutputDto,
  CodeResultDto,
  OutputDataDto,
  SessionExecResultDto,
  SessionInfoDto,
} from './dto/session.dto';
import type { RunFileDto } from './dto/run-request.dto';

export function toContainerDto(c: ContainerInfo): ContainerInfoDto {
  return {
    id: c.id,
    name: c.name,
    state: c.state,
    createdAt: c.createdAt.toISOString(),
    expiry: c.expiry.toISOString(),
    image: c.image,
    ...(c.generation !== undefined && { generation: c.generation }),
  };
}

/**
 * The ExecResult as JSON. The output is text; a stream's raw bytes come as base64 too (stdoutBase64,
 * stderrBase64) when the request asks for `base64`, or when they are not valid UTF-8 (the text is then lossy).
 */
export function toExecResultDto(
  r: ExecResult,
  encoding: 'text' | 'base64' = 'text',
): ExecResultDto {
  const base64 = (bytes: Buffer, truncated: boolean) =>
    encoding === 'base64' || !isUtf8(truncated ? withoutCutCharacter(bytes) : bytes)
      ? bytes.toString('base64')
      : undefined;
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    ...withDefined('stdoutBase64', base64(r.stdoutBytes, r.stdoutTruncated)),
    ...withDefined('stderrBase64', base64(r.stderrBytes, r.stderrTruncated)),
    timedOut: r.timedOut,
    oomKilled: r.oomKilled,
    truncated: r.truncated,
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
    stdoutTotalBytes: r.stdoutTotalBytes,
    stderrTotalBytes: r.stderrTotalBytes,
    profile: r.profile,
    transport: r.transport,
    durationMs: r.durationMs,
    queuedMs: r.queuedMs,
    containerId: r.containerId,
    executionId: r.executionId,
    ...(r.files && {
      files: r.files.map((f) => ({
        path: f.path,
        size: f.size,
        contentBase64: f.content.toString('base64'),
        truncated: f.truncated,
        ...(f.unreadable && { unreadable: true }),
      })),
      filesTruncated: r.filesTruncated ?? false,
    }),
  };
}

export function toSessionInfoDto(s: SessionInfo): SessionInfoDto {
  return {
    id: s.id,
    profile: s.profile,
    owner: s.owner,
    containerId: s.containerId,
    createdAt: s.createdAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    lastUsedAt: s.lastUsedAt.toISOString(),
    ageMs: s.ageMs,
    idleMs: s.idleMs,
    idleTimeoutMs: s.idleTimeoutMs,
    calls: s.calls,
    busy: s.busy,
    queued: s.queued,
    state: s.state,
    closedReason: s.closedReason,
  };
}

/** A rich output as JSON: its images (Buffers in process) as base64, the other entries as they are. */
export function toCodeOutputDto(o: CodeOutput): CodeOutputDto {
  const { 'image/png': png, 'image/jpeg': jpeg, ...rest } = o.data;
  const data: OutputDataDto = { ...rest };
  if (png) data['image/png'] = png.toString('base64');
  if (jpeg) data['image/jpeg'] = jpeg.toString('base64');
  return { type: o.type, data };
}

/**
 * A session call's result as JSON: the ExecResult's mapping (toExecResultDto) plus `interrupted` and
 * `stateLost`, and for code `executionCount`, the rich outputs (images as base64) and the exception (`error`)
 * when one ended it.
 */
export function toSessionResultDto(
  r: CodeResult | SessionExecResult,
  encoding: 'text' | 'base64' = 'text',
): CodeResultDto | SessionExecResultDto {
  const base: SessionExecResultDto = {
    ...toExecResultDto(r, encoding),
    interrupted: r.interrupted,
    stateLost: r.stateLost,
  };
  if (!('executionCount' in r)) return base;
  return {
    ...base,
    executionCount: r.executionCount,
    outputs: (r.outputs ?? []).map(toCodeOutputDto),
    outputsTruncated: r.outputsTruncated ?? false,
    ...(r.error && {
      error: { name: r.error.name, value: r.error.value, traceback: r.error.traceback },
    }),
  };
}

/** The request's `files` as run() takes them: exactly one of content and contentBase64 each. */
export function toRunFiles(files: RunFileDto[] | undefined): {
  files?: RunFile[];
  problems: { field: string; message: string }[];
} {
  if (!files) return { problems: [] };
  const problems: { field: string; message: string }[] = [];
  const out = files.map((f, i) => {
    if ((f.content === undefined) === (f.contentBase64 === undefined)) {
      problems.push({
        field: `files[${i}].content`,
        message: `files[${i}] must have exactly one of content and contentBase64`,
      });
    }
    const content =
      f.contentBase64 !== undefined
        ? Buffer.from(f.contentBase64, 'base64')
        : Buffer.from(f.content ?? '', 'utf8');
    return { path: f.path, content, ...(f.mode !== undefined && { mode: f.mode }) };
  });
  return { files: out, problems };
}

function withDefined<K extends string>(
  key: K,
  value: string | undefined,
): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/**
 * The bytes without a UTF-8 sequence the cap cut short at their end (1-3 bytes of a character whose rest was
 * dropped): what the program wrote was valid, only the cut is not.
 */
export function withoutCutCharacter(bytes: Buffer): Buffer {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? bytes.subarray(0, bytes.length - back) : bytes;
  }
  return bytes;
}
