import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where runner.py is, beside this module (copied into dist/ by the build). */
export const RUNNER_ASSET_PATH = join(__dirname, 'assets', 'runner.py');

/** The kernel refuses one argv string above 128 KiB (MAX_ARG_STRLEN); the source is one. */
const MAX_SOURCE_BYTES = 120 * 1024;

export interface RunnerSource {
  /** The program, passed to `python3 -I -c`. */
  source: string;
  /** Its `RUNNER_VERSION` literal: what its HELLO must report. */
  version: string;
  /** sha256 of the source, first 16 hex: part of the generation of a runner container. */
  hash: string;
}

let loaded: RunnerSource | null = null;

/** The runner shipped with this package, read once. */
export function runnerSource(): RunnerSource {
  if (loaded) return loaded;
  const source = readFileSync(RUNNER_ASSET_PATH, 'utf8');
  if (Buffer.byteLength(source) > MAX_SOURCE_BYTES) {
    throw new Error(
      `${RUNNER_ASSET_PATH} is over ${MAX_SOURCE_BYTES} bytes: it must fit in one argv string`,
    );
  }
  const version = /^RUNNER_VERSION = '([^']+)'$/m.exec(source)?.[1];
  if (!version) throw new Error(`${RUNNER_ASSET_PATH} has no RUNNER_VERSION = '...' line`);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  return (loaded = { source, version, hash });
}
