import { IsIn, IsInt, IsNotEmpty, IsString, Max, Min, ValidateBy } from 'class-validator';
import { ROLLOUT_STRATEGIES, type RolloutStrategy } from '../../interfaces/rollout.interface';
import { ApiProperty, ApiPropertyOptional } from '../openapi/swagger';
import { IsOptionalDefined } from './validation';

/** A byte count: a non-negative integer, or a string with a unit (`256m`, `64MiB`). */
function IsByteSize(): PropertyDecorator {
  return ValidateBy({
    name: 'isByteSize',
    validator: {
      validate: (value: unknown) =>
        (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) ||
        (typeof value === 'string' && /^\d+(?:\.\d+)?\s*[a-zA-Z]*$/.test(value.trim())),
      defaultMessage: () =>
        '$property must be a byte count: an integer, or a string such as 256m or 64MiB',
    },
  });
}

const bytes = (what: string) => ({
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', example: '256m' },
  ],
  description: `${what} in bytes, or with a unit (256m, 64MiB).`,
});

/**
 * Body of PUT .../profiles/:profile: what to change at run time (not persisted) and how to roll it out. Every
 * field but size and maxContainers makes a new generation of containers.
 */
export class UpdateProfileDto {
  @ApiPropertyOptional({ description: 'Image name; its engine id now decides the new generation.' })
  @IsOptionalDefined()
  @IsString()
  @IsNotEmpty()
  image?: string;

  @ApiPropertyOptional({ minimum: 0, description: 'Idle containers kept warm.' })
  @IsOptionalDefined()
  @IsInt()
  @Min(0)
  @Max(100_000)
  size?: number;

  @ApiPropertyOptional({ minimum: 1, description: 'Cap on all containers of the profile.' })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  @Max(100_000)
  maxContainers?: number;

  @ApiPropertyOptional(bytes('Memory limit'))
  @IsOptionalDefined()
  @IsByteSize()
  memoryBytes?: number | string;

  @ApiPropertyOptional({ minimum: 1_000_000, description: 'CPU limit in 1e-9 CPUs.' })
  @IsOptionalDefined()
  @IsInt()
  nanoCpus?: number;

  @ApiPropertyOptional({ minimum: 8, description: 'Process limit.' })
  @IsOptionalDefined()
  @IsInt()
  pidsLimit?: number;

  @ApiPropertyOptional({ minimum: 16, description: 'Open files limit.' })
  @IsOptionalDefined()
  @IsInt()
  nofileLimit?: number;

  @ApiPropertyOptional(bytes('Largest file a process may write'))
  @IsOptionalDefined()
  @IsByteSize()
  fileSizeLimitBytes?: number | string;

  @ApiPropertyOptional(bytes('Size of the /tmp tmpfs'))
  @IsOptionalDefined()
  @IsByteSize()
  tmpSizeBytes?: number | string;

  @ApiPropertyOptional(bytes('Size of the work dir tmpfs'))
  @IsOptionalDefined()
  @IsByteSize()
  workdirSizeBytes?: number | string;

  @ApiPropertyOptional(bytes('Size of /dev/shm'))
  @IsOptionalDefined()
  @IsByteSize()
  shmSizeBytes?: number | string;

  @ApiPropertyOptional({
    enum: ROLLOUT_STRATEGIES,
    description: "How old containers are replaced; default the profile's updateStrategy.",
  })
  @IsOptionalDefined()
  @IsIn(ROLLOUT_STRATEGIES)
  strategy?: RolloutStrategy;

  @ApiPropertyOptional({
    minimum: 1,
    description: "rolling: containers warmed beyond size at once; default the profile's maxSurge.",
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  @Max(100_000)
  maxSurge?: number;
}

/** stats().rollout: where the profile's last update stands. */
export class RolloutStatusDto {
  @ApiProperty({ enum: ROLLOUT_STRATEGIES }) strategy!: RolloutStrategy;
  @ApiProperty({ type: String, nullable: true, description: 'The generation serving now.' })
  generation!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The generation rolled out.' })
  targetGeneration!: string | null;
  @ApiProperty({ enum: ['idle', 'progressing', 'complete', 'failed'] })
  state!: 'idle' | 'progressing' | 'complete' | 'failed';
  @ApiPropertyOptional({ description: 'Why it failed.' }) reason?: string;
  @ApiProperty({
    description: 'Containers (idle or leased) of the generation new ones are made of.',
  })
  updated!: number;
  @ApiProperty({ description: 'Containers (idle or leased) of any other generation.' })
  stale!: number;
  @ApiProperty({ type: String, nullable: true, description: 'When it started (ISO 8601).' })
  startedAt!: string | null;
}
