import { ConsoleLogger, type ConsoleLoggerOptions, type LogLevel } from '@nestjs/common';

/** Levels from the most to the least severe: LOG_LEVEL=warn keeps fatal, error and warn. */
const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/**
 * Logger options of the runnable service, from the environment:
 * - `LOG_FORMAT`: `json` (one JSON object per line, Nest's ConsoleLogger `json` mode) or `text`; default `json`
 *   when stdout is not a terminal (process managers, containers, files), `text` on a terminal.
 * - colours only in `text` mode on a terminal, never with `NO_COLOR` set.
 * - `LOG_LEVEL`: the least severe level logged (fatal, error, warn, log, debug, verbose); default `log`.
 */
export function serviceLoggerOptions(
  env: NodeJS.ProcessEnv = process.env,
  isTTY: boolean = process.stdout.isTTY === true,
): ConsoleLoggerOptions {
  const format = env.LOG_FORMAT?.trim().toLowerCase() || (isTTY ? 'text' : 'json');
  if (format !== 'json' && format !== 'text') {
    throw new Error(`Invalid LOG_FORMAT: must be json or text, got "${env.LOG_FORMAT}"`);
  }
  const level = (env.LOG_LEVEL?.trim().toLowerCase() || 'log') as LogLevel;
  const upTo = LEVELS.indexOf(level);
  if (upTo < 0) {
    throw new Error(
      `Invalid LOG_LEVEL: must be one of ${LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`,
    );
  }
  const json = format === 'json';
  return {
    json,
    colors: !json && isTTY && !env.NO_COLOR,
    logLevels: LEVELS.slice(0, upTo + 1),
  };
}

/** The service's logger (see serviceLoggerOptions). */
export function createServiceLogger(
  env: NodeJS.ProcessEnv = process.env,
  isTTY: boolean = process.stdout.isTTY === true,
): ConsoleLogger {
  return new ConsoleLogger(serviceLoggerOptions(env, isTTY));
}
