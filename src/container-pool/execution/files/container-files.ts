import { InvalidRequestError } from '../../errors/container-pool.errors';
import type { ContainerFiles, FileListing } from '../../interfaces/files.interface';
import type { PooledContainer } from '../../pool/pooled-container';
import { FileOps, MAX_LIST_ENTRIES } from './file-ops';
import { checkMode, contentBuffer } from './file-request';

function positiveInt(field: string, value: unknown, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InvalidRequestError(
      field,
      `must be a positive integer, got ${JSON.stringify(value)}`,
    );
  }
  if (value > max)
    throw new InvalidRequestError(field, `must not be greater than ${what} (${max})`);
  return value;
}

/** container.files: the checks of each call on the host, then one exec of FileOps. */
export class LeasedFiles implements ContainerFiles {
  constructor(
    private readonly ops: FileOps,
    private readonly entry: PooledContainer,
    private readonly maxFileBytes: number,
  ) {}

  async write(path: string, data: string | Buffer | Uint8Array, opts: { mode?: number } = {}) {
    const confined = this.ops.confine('path', path);
    const content = contentBuffer('data', data);
    if (content.length > this.maxFileBytes) {
      throw new InvalidRequestError(
        'data',
        `is ${content.length} bytes, above maxFileBytes (${this.maxFileBytes})`,
      );
    }
    const mode = checkMode('mode', opts.mode);
    await this.ops.writeMany(this.entry, [{ path: confined, content, mode }], () => 'path');
  }

  async read(path: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    const confined = this.ops.confine('path', path);
    const maxBytes =
      opts.maxBytes === undefined
        ? this.maxFileBytes
        : positiveInt('maxBytes', opts.maxBytes, this.maxFileBytes, 'maxFileBytes');
    return this.ops.read(this.entry, confined, maxBytes);
  }

  async list(dir = '.', opts: { maxEntries?: number } = {}): Promise<FileListing> {
    const confined = this.ops.confine('dir', dir, true);
    const maxEntries =
      opts.maxEntries === undefined
        ? 1000
        : positiveInt('maxEntries', opts.maxEntries, MAX_LIST_ENTRIES, 'the largest listing');
    return this.ops.list(this.entry, confined, maxEntries);
  }

  async remove(path: string): Promise<void> {
    return this.ops.remove(this.entry, this.ops.confine('path', path));
  }
}
