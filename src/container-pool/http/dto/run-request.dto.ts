import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsBase64,
  IsIn,
  IsInt,
  IsObject,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '../openapi/swagger';
import { IsEnvRecord, IsOptionalDefined } from './validation';

/** One of `files`: give exactly one of `content` (UTF-8 text) and `contentBase64` (bytes). */
export class RunFileDto {
  @ApiProperty({
    description: 'Relative to the work dir, or absolute inside the work dir or /tmp; no `..`.',
    example: 'in/data.csv',
  })
  @IsString()
  @MaxLength(4096)
  path!: string;

  @ApiPropertyOptional({ description: 'The content as UTF-8 text.', example: 'a,b\n1,2\n' })
  @IsOptionalDefined()
  @IsString()
  content?: string;

  @ApiPropertyOptional({ format: 'byte', description: 'The content as base64 (any bytes).' })
  @IsOptionalDefined()
  @IsBase64()
  contentBase64?: string;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 511,
    description: 'Permission bits; default 0644 (420).',
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(0)
  @Max(0o777)
  mode?: number;
}

/** Body of POST /executions: exactly ContainerPoolService.run()'s request (cmd or code). */
export class RunRequestDto {
  @ApiPropertyOptional({
    description:
      'The profile to run in (its image and limits); default the default profile. On a profile route ' +
      '(.../profiles/<name>/executions) the route says it; omit it there.',
    example: 'python',
  })
  @IsOptionalDefined()
  @IsString()
  @MaxLength(63)
  profile?: string;

  @ApiPropertyOptional({
    type: [String],
    description: 'argv of the program, run without a shell. Give exactly one of cmd and code.',
    example: ['sh', '-c', 'echo hello'],
  })
  @IsOptionalDefined()
  @IsArray()
  @ArrayNotEmpty()
  @IsString({ each: true })
  cmd?: string[];

  @ApiPropertyOptional({
    description:
      "Source code run by the pool's Python interpreter. Give exactly one of cmd and code.",
    example: 'print(6 * 7)',
  })
  @IsOptionalDefined()
  @IsString()
  code?: string;

  @ApiPropertyOptional({ enum: ['python'], description: 'Language of `code`; only python.' })
  @IsOptionalDefined()
  @IsIn(['python'])
  language?: 'python';

  @ApiPropertyOptional({
    description: "Written to the program's standard input (UTF-8), which is then closed.",
  })
  @IsOptionalDefined()
  @IsString()
  stdin?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Environment variables; the program sees only these plus PATH and HOME.',
    example: { GREETING: 'hi' },
  })
  @IsOptionalDefined()
  @IsEnvRecord()
  env?: Record<string, string>;

  @ApiPropertyOptional({ description: "Absolute working directory; default the pool's work dir." })
  @IsOptionalDefined()
  @IsString()
  @MaxLength(4096)
  @Matches(/^\/[^\0]*$/, { message: 'workdir must be an absolute path' })
  workdir?: string;

  @ApiPropertyOptional({
    minimum: 1,
    description: 'Wall-clock timeout in ms; default execTimeoutMs, at most maxExecTimeoutMs.',
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  timeoutMs?: number;

  @ApiPropertyOptional({
    minimum: 1,
    description: "Per-stream output cap in bytes; default and maximum the pool's maxOutputBytes.",
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  maxOutputBytes?: number;

  @ApiPropertyOptional({
    type: [RunFileDto],
    description:
      "Files written before the program starts; at most the profile's maxFiles, maxFileBytes each and " +
      'maxFilesTotalBytes in all.',
  })
  @IsOptionalDefined()
  @IsArray()
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => RunFileDto)
  files?: RunFileDto[];

  @ApiPropertyOptional({
    type: [String],
    description:
      'Glob patterns relative to the work dir (`*`, `?`, `**`; dotfiles only when named): the matching ' +
      'files come back in `files` when the program exited by itself.',
    example: ['out/*.png'],
  })
  @IsOptionalDefined()
  @IsArray()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  collect?: string[];

  @ApiPropertyOptional({
    enum: ['text', 'base64'],
    default: 'text',
    description:
      'How the result carries the output: `text` (stdout/stderr as UTF-8; stdoutBase64/stderrBase64 only for ' +
      'a stream that is not valid UTF-8) or `base64` (stdoutBase64/stderrBase64 always, beside the text).',
  })
  @IsOptionalDefined()
  @IsIn(['text', 'base64'])
  outputEncoding?: 'text' | 'base64';
}
