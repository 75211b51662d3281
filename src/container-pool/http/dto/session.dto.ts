/* Requests and answers of the session routes (POST/GET .../sessions...). */
import { ArrayNotEmpty, IsArray, IsIn, IsInt, IsString, MaxLength, Min } from 'class-validator';
import { ApiProperty, ApiPropertyOptional } from '../openapi/swagger';
import { ExecResultDto } from './responses.dto';
import { IsEnvRecord, IsOptionalDefined } from './validation';

/** Body of POST .../sessions. The owner is the caller's token, never the body's. */
export class OpenSessionDto {
  @ApiPropertyOptional({
    description:
      'The profile whose container the session holds (runner transport); default the default profile.',
    example: 'python',
  })
  @IsOptionalDefined()
  @IsString()
  @MaxLength(63)
  profile?: string;

  @ApiPropertyOptional({
    minimum: 1,
    description:
      "Closed after this long without a call; default the profile's sessionIdleTimeoutMs.",
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  idleTimeoutMs?: number;

  @ApiPropertyOptional({
    minimum: 1,
    description:
      "Closed this long after it opened, whatever it is doing; default and at most the profile's " +
      'sessionMaxLifetimeMs (a larger one is a 400 naming maxLifetimeMs).',
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  maxLifetimeMs?: number;
}

/**
 * Body of POST .../sessions/:id/executions: exactly one of `code` (Python in the session's interpreter,
 * runCode()) and `cmd` (argv, run()).
 */
export class SessionRunDto {
  @ApiPropertyOptional({
    description:
      "Python run in the session's persistent interpreter: names, imports, os.environ and the cwd persist " +
      'between calls. Give exactly one of code and cmd.',
    example: 'x = 6 * 7\nprint(x)',
  })
  @IsOptionalDefined()
  @IsString()
  code?: string;

  @ApiPropertyOptional({
    type: [String],
    description:
      "argv of a program run without a shell, in the interpreter's cwd and environment. Give exactly one of " +
      'code and cmd.',
    example: ['ls', '-la'],
  })
  @IsOptionalDefined()
  @IsArray()
  @ArrayNotEmpty()
  @IsString({ each: true })
  cmd?: string[];

  @ApiPropertyOptional({
    description: "Written to the call's standard input (UTF-8), then closed.",
  })
  @IsOptionalDefined()
  @IsString()
  stdin?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: "With cmd only: extra variables over the interpreter's environment.",
    example: { GREETING: 'hi' },
  })
  @IsOptionalDefined()
  @IsEnvRecord()
  env?: Record<string, string>;

  @ApiPropertyOptional({
    minimum: 1,
    description:
      'Wall-clock timeout in ms; default execTimeoutMs, at most maxExecTimeoutMs. An overrun is interrupted ' +
      '(state kept), then the interpreter restarted (stateLost), then the session lost (502).',
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  timeoutMs?: number;

  @ApiPropertyOptional({
    minimum: 1,
    description:
      "Per-stream output cap in bytes; default and maximum the profile's maxOutputBytes.",
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(1)
  maxOutputBytes?: number;

  @ApiPropertyOptional({
    minimum: 0,
    description:
      "With code only: most rich outputs (`outputs`) the call keeps; default and at most the profile's " +
      'maxOutputs; 0: none. Their bytes in all are capped by maxOutputBytes.',
  })
  @IsOptionalDefined()
  @IsInt()
  @Min(0)
  maxOutputs?: number;

  @ApiPropertyOptional({
    enum: ['text', 'base64'],
    default: 'text',
    description:
      'How the result and the streamed lines carry the output, as on POST .../executions.',
  })
  @IsOptionalDefined()
  @IsIn(['text', 'base64'])
  outputEncoding?: 'text' | 'base64';
}

export class SessionInfoDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'The profile whose container it holds.' }) profile!: string;
  @ApiProperty({ description: 'The fingerprint of the token that opened it (its owner).' })
  owner!: string;
  @ApiProperty() containerId!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({
    type: String,
    format: 'date-time',
    description: 'When it is closed at the latest (its max lifetime).',
  })
  expiresAt!: string;
  @ApiProperty({
    type: String,
    format: 'date-time',
    description: "The last call's end (or the opening).",
  })
  lastUsedAt!: string;
  @ApiProperty({ description: 'Since it opened, in ms.' }) ageMs!: number;
  @ApiProperty({ description: 'Since its last call ended, in ms (0 while a call runs).' })
  idleMs!: number;
  @ApiProperty({ description: 'Closed after this long without a call.' }) idleTimeoutMs!: number;
  @ApiProperty({ description: 'Calls so far (code and commands).' }) calls!: number;
  @ApiProperty({ description: 'A call is running now.' }) busy!: boolean;
  @ApiProperty({ description: 'Calls waiting behind the running one.' }) queued!: number;
  @ApiProperty({ enum: ['open', 'closed'] }) state!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Why it closed (closed, idle, lifetime, shutdown, lost: ...); null while open.',
  })
  closedReason!: string | null;
}

export class CodeErrorDto {
  @ApiProperty({
    description: "The exception type's name, e.g. ZeroDivisionError, KeyboardInterrupt.",
  })
  name!: string;
  @ApiProperty({ description: 'str() of the exception.' }) value!: string;
  @ApiProperty({
    description: "The traceback as Python prints it, the user's frames only (cells are <cell-N>).",
  })
  traceback!: string;
}

/** The result of a session's command (`cmd`). */
export class SessionExecResultDto extends ExecResultDto {
  @ApiProperty({
    description:
      'The call was interrupted (its timeout, or POST .../interrupt) before it returned by itself.',
  })
  interrupted!: boolean;
  @ApiProperty({
    description:
      "The interpreter's state (names, imports, os.environ, cwd) did not survive this call: the next call " +
      'starts from a fresh interpreter.',
  })
  stateLost!: boolean;
}

/** One rich output's representations by MIME type (the user code's own word). */
export class OutputDataDto {
  @ApiProperty({ description: 'The text form (repr()); always there.', example: '42' })
  'text/plain'!: string;
  @ApiPropertyOptional({ description: 'HTML (_repr_html_, e.g. a pandas DataFrame).' })
  'text/html'?: string;
  @ApiPropertyOptional({ description: 'Markdown (_repr_markdown_).' })
  'text/markdown'?: string;
  @ApiPropertyOptional({ description: 'LaTeX (_repr_latex_).' })
  'text/latex'?: string;
  @ApiPropertyOptional({ description: 'An SVG document (_repr_svg_).' })
  'image/svg+xml'?: string;
  @ApiPropertyOptional({
    format: 'byte',
    description: 'A PNG image, base64 (a matplotlib figure, _repr_png_).',
  })
  'image/png'?: string;
  @ApiPropertyOptional({ format: 'byte', description: 'A JPEG image, base64 (_repr_jpeg_).' })
  'image/jpeg'?: string;
  @ApiPropertyOptional({
    description: 'Any JSON value (_repr_json_).',
    oneOf: [
      { type: 'object' },
      { type: 'array', items: {} },
      { type: 'string' },
      { type: 'number' },
      { type: 'boolean' },
    ],
    nullable: true,
  })
  'application/json'?: unknown;
}

/** One rich output of a session's code call. */
export class CodeOutputDto {
  @ApiProperty({
    enum: ['result', 'display'],
    description:
      "`result`: the value of the code's trailing expression; `display`: a display() call or a matplotlib figure.",
  })
  type!: 'result' | 'display';
  @ApiProperty({ type: OutputDataDto })
  data!: OutputDataDto;
}

/** The result of a session's code (`code`). */
export class CodeResultDto extends SessionExecResultDto {
  @ApiPropertyOptional({
    type: CodeErrorDto,
    description: "The exception that ended the code, when one did (the user code's own word).",
  })
  error?: CodeErrorDto;
  @ApiProperty({
    description:
      "This call's number among the calls of the current interpreter (1 after each restart).",
  })
  executionCount!: number;
  @ApiProperty({
    type: [CodeOutputDto],
    description:
      'Rich outputs in order, as a notebook shows them ([] when none): display() calls, matplotlib figures ' +
      "(image/png) and the trailing expression's value (result); at most maxOutputs of maxOutputBytes in all.",
  })
  outputs!: CodeOutputDto[];
  @ApiProperty({
    description: 'Outputs were dropped beyond maxOutputs or maxOutputBytes.',
  })
  outputsTruncated!: boolean;
}
