/** A file handed to run() (written into the work dir before the program starts). */
export interface RunFile {
  /** Relative to the work dir, or absolute inside the work dir or /tmp. */
  path: string;
  /** The bytes (a string is written as UTF-8). Empty files work. */
  content: string | Buffer | Uint8Array;
  /** Permission bits, default 0o644. */
  mode?: number;
}

/** A file collected after run() (`collect`). */
export interface CollectedFile {
  /** Relative to the work dir. */
  path: string;
  /** Its size as the container saw it. */
  size: number;
  /** The bytes; empty when `truncated`. */
  content: Buffer;
  /** Not returned: above maxFileBytes, or the sandbox user could not read it (mode 0000: `unreadable`). */
  truncated: boolean;
  /** The sandbox user could not read it (its mode denies it). */
  unreadable?: boolean;
}

export type FileEntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface FileEntry {
  name: string;
  /** The directory's path as given, joined with the name. */
  path: string;
  type: FileEntryType;
  /** lstat size in bytes (a symlink's is its target's length). */
  size: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
}

export interface FileListing {
  /** Sorted by name. */
  entries: FileEntry[];
  /** The directory has more entries than maxEntries (which entries are listed is then unspecified). */
  truncated: boolean;
}

/**
 * Files of a leased container, all handled inside it as the sandbox user. Paths are relative to the work dir or
 * absolute inside the work dir or /tmp; `..`, other absolute paths and symlinks leading out are refused with
 * InvalidRequestError naming the path.
 */
export interface ContainerFiles {
  /** Creates parent directories and replaces the file atomically (temp file + rename); default mode 0o644. */
  write(path: string, data: string | Buffer | Uint8Array, opts?: { mode?: number }): Promise<void>;
  /** The whole file; one larger than `maxBytes` (default and at most maxFileBytes) is an InvalidRequestError. */
  read(path: string, opts?: { maxBytes?: number }): Promise<Buffer>;
  /** The entries of a directory (default the work dir), at most `maxEntries` (default 1000, at most 100 000). */
  list(dir?: string, opts?: { maxEntries?: number }): Promise<FileListing>;
  /** Removes a file, a symlink (not its target) or a directory recursively; a missing path is fine. */
  remove(path: string): Promise<void>;
}
