/* Response shapes of the pool's HTTP API, for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional } from '../openapi/swagger';
import { RolloutStatusDto } from './update-profile.dto';

export class PoolTotalsDto {
  @ApiProperty() created!: number;
  @ApiProperty() destroyed!: number;
  @ApiProperty({ description: 'Creates that failed.' }) failedCreates!: number;
  @ApiProperty() acquired!: number;
  @ApiProperty() acquireTimeouts!: number;
  @ApiProperty() executions!: number;
  @ApiProperty({ description: 'Executions killed by their timeout.' }) timeouts!: number;
  @ApiProperty({ description: 'Executions hit by the OOM killer.' }) ooms!: number;
  @ApiProperty({ description: 'Executions whose output was truncated.' }) truncated!: number;
  @ApiProperty({ description: 'Containers that died outside the pool.' }) containersLost!: number;
  @ApiProperty({ description: 'Leftovers of dead instances removed.' }) orphansRemoved!: number;
}

export class PoolStatsDto {
  @ApiProperty({ description: "The module's name." }) name!: string;
  @ApiProperty({
    description: 'The profile these stats are of (the module name without profiles).',
  })
  profile!: string;
  @ApiProperty({ description: 'Sandbox image.' }) image!: string;
  @ApiProperty({
    enum: ['exec', 'runner'],
    description: 'How its programs reach their containers (the `auto` setting decided).',
  })
  transport!: 'exec' | 'runner';
  @ApiProperty() idle!: number;
  @ApiProperty() leased!: number;
  @ApiProperty() creating!: number;
  @ApiProperty() destroying!: number;
  @ApiProperty({ description: 'Acquires waiting for a container.' }) waiting!: number;
  @ApiProperty({ description: 'Idle containers kept warm.' }) size!: number;
  @ApiProperty() maxContainers!: number;
  @ApiProperty({ description: 'Drained by an operator: no refill, no hand-out.' })
  draining!: boolean;
  @ApiProperty() shuttingDown!: boolean;
  @ApiProperty({ description: 'The Docker engine answers.' }) engineAvailable!: boolean;
  @ApiProperty({ type: String, nullable: true, description: 'Why the pool cannot serve now.' })
  lastError!: string | null;
  @ApiProperty({ type: PoolTotalsDto }) totals!: PoolTotalsDto;
  @ApiProperty({ type: RolloutStatusDto, description: "Where the profile's last update stands." })
  rollout!: RolloutStatusDto;
}

export class ProfileInfoDto {
  @ApiProperty({ description: 'Profile name.' }) name!: string;
  @ApiProperty({ description: 'Its image, as configured.' }) image!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: "The engine's id of the image when last checked (null before the first check).",
  })
  imageId!: string | null;
  @ApiProperty({
    enum: ['exec', 'runner'],
    description: 'How its programs reach their containers.',
  })
  transport!: 'exec' | 'runner';
  @ApiProperty({
    description: 'Whether it can serve now (an idle container, or room to create one).',
  })
  ready!: boolean;
  @ApiProperty({ type: PoolStatsDto }) stats!: PoolStatsDto;
}

export class ContainerInfoDto {
  @ApiProperty({ description: 'Engine id (64 hex); empty while creating.' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['creating', 'idle', 'leased', 'destroying'] }) state!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', description: 'When the pool recycles it.' })
  expiry!: string;
  @ApiProperty() image!: string;
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Its generation (what it is made of; see stats().rollout); null while creating.',
  })
  generation?: string | null;
}

export class RemovedContainerDto {
  @ApiProperty({ type: ContainerInfoDto, description: 'The container as it was before removal.' })
  removed!: ContainerInfoDto;
}

export class CollectedFileDto {
  @ApiProperty({ description: 'Relative to the work dir.' }) path!: string;
  @ApiProperty({ description: 'Its size in bytes.' }) size!: number;
  @ApiProperty({ format: 'byte', description: 'The bytes, base64; empty when truncated.' })
  contentBase64!: string;
  @ApiProperty({
    description:
      'Not returned: above maxFileBytes, or unreadable by the sandbox user (then `unreadable` too).',
  })
  truncated!: boolean;
  @ApiPropertyOptional() unreadable?: boolean;
}

export class ExecResultDto {
  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'Exit code; null when the pool killed the program (timeout) and none was reported.',
  })
  exitCode!: number | null;
  @ApiProperty({
    description: 'Captured stdout decoded as UTF-8 (invalid sequences become U+FFFD).',
  })
  stdout!: string;
  @ApiProperty({ description: 'Captured stderr decoded as UTF-8.' }) stderr!: string;
  @ApiPropertyOptional({
    format: 'byte',
    description:
      'The exact bytes of stdout that were kept, base64: with outputEncoding base64, or when they are not valid UTF-8.',
  })
  stdoutBase64?: string;
  @ApiPropertyOptional({
    format: 'byte',
    description: 'The exact bytes of stderr that were kept, base64 (same rule as stdoutBase64).',
  })
  stderrBase64?: string;
  @ApiProperty() timedOut!: boolean;
  @ApiProperty() oomKilled!: boolean;
  @ApiProperty({ description: 'Some output was dropped at maxOutputBytes (either stream).' })
  truncated!: boolean;
  @ApiProperty() stdoutTruncated!: boolean;
  @ApiProperty() stderrTruncated!: boolean;
  @ApiProperty({ description: 'Bytes the program wrote to stdout, counted beyond the cap.' })
  stdoutTotalBytes!: number;
  @ApiProperty({ description: 'Bytes the program wrote to stderr, counted beyond the cap.' })
  stderrTotalBytes!: number;
  @ApiProperty({ description: 'The profile (pool) that ran it.' }) profile!: string;
  @ApiProperty({ enum: ['exec', 'runner'], description: 'How the program reached its container.' })
  transport!: string;
  @ApiProperty() durationMs!: number;
  @ApiProperty({ description: 'Time spent waiting for a container.' }) queuedMs!: number;
  @ApiProperty() containerId!: string;
  @ApiProperty() executionId!: string;
  @ApiPropertyOptional({
    type: [CollectedFileDto],
    description: 'With `collect`: the matching files, sorted by path.',
  })
  files?: CollectedFileDto[];
  @ApiPropertyOptional({
    description:
      'With `collect`: collecting stopped at maxFiles, maxFilesTotalBytes, or what fits maxBodyBytes as base64.',
  })
  filesTruncated?: boolean;
}

export class ProblemDto {
  @ApiPropertyOptional({ description: 'The field, e.g. `timeoutMs` or `env.A`.' }) field?: string;
  @ApiProperty() message!: string;
}

/** The one shape of every error the module's routes answer. */
export class ErrorBodyDto {
  @ApiProperty() statusCode!: number;
  @ApiProperty({ description: 'Reason phrase of the status, e.g. Bad Request.' }) error!: string;
  @ApiProperty({
    description:
      'Stable code for programs: INVALID_REQUEST, UNAUTHORIZED, FORBIDDEN_SCOPE, API_DISABLED, NOT_FOUND, ' +
      'CONTAINER_NOT_FOUND, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, ACQUIRE_TIMEOUT, TOO_MANY_WAITERS, ' +
      'POOL_DRAINED, POOL_SHUTTING_DOWN, ENGINE_UNAVAILABLE, IMAGE_UNAVAILABLE, SANDBOX_UNSUPPORTED, ' +
      'CONTAINER_CREATE_FAILED, CONTAINER_LOST, CONTAINER_EXPIRED, RUNNER_PROTOCOL, INTERNAL, ...',
  })
  code!: string;
  @ApiProperty({
    description: 'What went wrong and what to do; for an invalid request its first problem.',
  })
  message!: string;
  @ApiPropertyOptional({ description: 'The field an invalid request got wrong (the first).' })
  field?: string;
  @ApiProperty({ description: 'Whether trying again later may succeed.' }) retryable!: boolean;
  @ApiPropertyOptional({
    type: [ProblemDto],
    description: 'For an invalid request: every problem.',
  })
  details?: ProblemDto[];
}
