import { InvalidRequestError } from '../../errors/container-pool.errors';
import type { ResolvedContainerPoolOptions } from '../../interfaces/container-pool-options.interface';
import type { FileToWrite } from './file-ops';
import { Glob, parseCollect } from './glob';
import { confinePath } from './paths';

export type FileLimits = Pick<
  ResolvedContainerPoolOptions,
  'workdir' | 'maxFiles' | 'maxFileBytes' | 'maxFilesTotalBytes'
>;

/** run()'s `files` and `collect`, checked against the caps before anything runs. */
export interface NormalizedFiles {
  files: FileToWrite[];
  collect: Glob[] | null;
}

export const DEFAULT_FILE_MODE = 0o644;

/** A mode of permission bits (no setuid, setgid or sticky bit: the tmpfs is nosuid anyway). */
export function checkMode(field: string, mode: unknown): number {
  if (mode === undefined) return DEFAULT_FILE_MODE;
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new InvalidRequestError(field, 'must be an integer from 0 to 0o777 (511)');
  }
  return mode;
}

export function contentBuffer(field: string, content: unknown): Buffer {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  if (Buffer.isBuffer(content)) return content;
  if (content instanceof Uint8Array) {
    return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  }
  throw new InvalidRequestError(field, 'must be a string, a Buffer or a Uint8Array');
}

/** Checks `files` (each path, mode and size, their count and total) and `collect` of a run request. */
export function normalizeRunFiles(
  request: { files?: unknown; collect?: unknown },
  limits: FileLimits,
): NormalizedFiles {
  const files: FileToWrite[] = [];
  if (request.files !== undefined) {
    if (!Array.isArray(request.files)) {
      throw new InvalidRequestError('files', 'must be an array of { path, content, mode? }');
    }
    if (request.files.length > limits.maxFiles) {
      throw new InvalidRequestError(
        'files',
        `has ${request.files.length} files, above maxFiles (${limits.maxFiles})`,
      );
    }
    const seen = new Set<string>();
    let total = 0;
    request.files.forEach((f: unknown, i) => {
      const field = `files[${i}]`;
      if (f === null || typeof f !== 'object') {
        throw new InvalidRequestError(field, 'must be an object { path, content, mode? }');
      }
      const { path, content, mode } = f as Record<string, unknown>;
      const confined = confinePath(`${field}.path`, path, limits.workdir);
      if (seen.has(confined.abs)) {
        throw new InvalidRequestError(`${field}.path`, `${JSON.stringify(path)} is given twice`);
      }
      seen.add(confined.abs);
      const bytes = contentBuffer(`${field}.content`, content);
      if (bytes.length > limits.maxFileBytes) {
        throw new InvalidRequestError(
          `${field}.content`,
          `is ${bytes.length} bytes, above maxFileBytes (${limits.maxFileBytes})`,
        );
      }
      total += bytes.length;
      if (total > limits.maxFilesTotalBytes) {
        throw new InvalidRequestError(
          'files',
          `total ${total} bytes or more, above maxFilesTotalBytes (${limits.maxFilesTotalBytes})`,
        );
      }
      files.push({ path: confined, content: bytes, mode: checkMode(`${field}.mode`, mode) });
    });
  }
  const collect = request.collect === undefined ? null : parseCollect(request.collect);
  return { files, collect };
}
