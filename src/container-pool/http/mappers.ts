import type { ContainerInfo } from '../interfaces/container.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';
import type { ContainerInfoDto, ExecResultDto } from './dto/responses.dto';

export function toContainerDto(c: ContainerInfo): ContainerInfoDto {
  return {
    id: c.id,
    name: c.name,
    state: c.state,
    createdAt: c.createdAt.toISOString(),
    expiry: c.expiry.toISOString(),
    image: c.image,
  };
}

/** The ExecResult as JSON: the raw bytes as base64 (stdoutBase64, stderrBase64). */
export function toExecResultDto(r: ExecResult): ExecResultDto {
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    stdoutBase64: r.stdoutBytes.toString('base64'),
    stderrBase64: r.stderrBytes.toString('base64'),
    timedOut: r.timedOut,
    oomKilled: r.oomKilled,
    truncated: r.truncated,
    durationMs: r.durationMs,
    queuedMs: r.queuedMs,
    containerId: r.containerId,
    executionId: r.executionId,
  };
}
