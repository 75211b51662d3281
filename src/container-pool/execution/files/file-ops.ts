import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { DriverContainer } from '../../engine/container-driver.interface';
import {
  ContainerLostError,
  ContainerReleasedError,
  FileOperationError,
  InvalidRequestError,
  PoolShuttingDownError,
} from '../../errors/container-pool.errors';
import type {
  CollectedFile,
  FileEntry,
  FileEntryType,
  FileListing,
} from '../../interfaces/files.interface';
import type { PoolLog } from '../../pool/container-source';
import type { ActiveExecution, PooledContainer } from '../../pool/pooled-container';
import type { WarmPool } from '../../pool/warm-pool';
import type { Transport } from '../../transport/transport.interface';
import { CappedSink } from '../output-sink';
import { FILES_SCRIPT } from './files-script';
import type { Glob } from './glob';
import { ConfinedPath, confinePath, joinShown, TMP_ROOT } from './paths';
import { TarParser, tarOf } from './tar';

/** How long one file operation may run inside the container (`timeout -s KILL`); the host waits a bit more. */
export const FILE_OP_TIMEOUT_MS = 60_000;
const HOST_GRACE_MS = 5_000;
const KILL_WAIT_MS = 500;
/** Largest `maxEntries` of list(). */
export const MAX_LIST_ENTRIES = 100_000;
/** Bytes of one listing record at most: `<hex> <size> <tok>./<name of 255 bytes><tok>\n`. */
const RECORD_BYTES = 400;
/** What collect scans at most: about 80 000 files. */
const SCAN_LIMIT_BYTES = 32 * 1024 * 1024;
/** Room for tar's headers (a long name, the member's, padding, the end blocks) on top of the content. */
const TAR_OVERHEAD = 8 * 1024;
const PER_MEMBER_OVERHEAD = 2048;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** A file to write: its checked path, bytes and mode. */
export interface FileToWrite {
  path: ConfinedPath;
  content: Buffer;
  mode: number;
}

export interface FileOpsDeps {
  pool: WarmPool;
  transport: Transport;
  options: { user: string; workdir: string; maxFileBytes: number };
  log: PoolLog;
}

/** Limits of one collect. */
export interface CollectLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

interface Refusal {
  reason: string;
  index: number;
}

const REASONS: Record<string, string> = {
  OUTSIDE: 'leads outside the work dir and /tmp (a symlink?)',
  NOTDIR: 'has a parent that is not a directory',
  ISDIR: 'is a directory',
  NOTFILE: 'is not a regular file',
  MISSING: 'does not exist',
  ROOT: 'is the work dir or /tmp itself',
};

/** File work in a leased container: each operation is one exec of the files helper as the sandbox user. */
export class FileOps {
  constructor(private readonly deps: FileOpsDeps) {}

  private get workdir(): string {
    return this.deps.options.workdir;
  }

  confine(field: string, path: unknown, allowRoot = false): ConfinedPath {
    return confinePath(field, path, this.workdir, { allowRoot });
  }

  /** Writes the files (checked by the caller) in one exec; `field(i)` names the i-th in errors. */
  async writeMany(c: PooledContainer, files: FileToWrite[], field: (i: number) => string) {
    // The work dir and /tmp are separate tmpfs mounts: each file is staged on its target's, so that its
    // move is a rename (atomic, and no copy that would have to read a file of mode 0000).
    const inTmp = (f: FileToWrite) =>
      f.path.abs === TMP_ROOT || f.path.abs.startsWith(`${TMP_ROOT}/`);
    const indexed = files.map((f, i) => ({ f, i }));
    for (const [stage, group] of [
      ['W', indexed.filter((x) => !inTmp(x.f))],
      ['T', indexed.filter((x) => inTmp(x.f))],
    ] as const) {
      if (group.length) {
        await this.writeStaged(
          c,
          stage,
          group.map((x) => x.f),
          (k) => field(group[k].i),
        );
      }
    }
  }

  private async writeStaged(
    c: PooledContainer,
    stage: 'W' | 'T',
    files: FileToWrite[],
    field: (i: number) => string,
  ) {
    const args: string[] = [stage];
    for (const f of files) args.push(f.path.abs, f.mode.toString(8));
    const stdin = tarOf(files.map((f, i) => ({ name: String(i), content: f.content })));
    const r = await this.exec(c, 'write', args, stdin, new CappedSink(4096), files[0].path.shown);
    this.check(r, (ref) => {
      const f = files[ref.index] ?? files[0];
      return { field: field(ref.index), path: f.path.shown };
    });
  }

  async read(c: PooledContainer, path: ConfinedPath, maxBytes: number): Promise<Buffer> {
    const parser = new TarParser(() => true, maxBytes);
    const r = await this.exec(
      c,
      'read',
      [path.abs, String(maxBytes + TAR_OVERHEAD)],
      null,
      parser,
      path.shown,
    );
    this.check(r, () => ({ field: 'path', path: path.shown }));
    const m = parser.members.find((x) => x.type !== 'L' && x.type !== 'x');
    if (!m) {
      throw new FileOperationError(
        path.shown,
        `could not be read: ${stderrText(r.stderr) || 'no data'}`,
      );
    }
    if (m.size > maxBytes) {
      throw new InvalidRequestError(
        'path',
        `${JSON.stringify(path.shown)} is ${m.size} bytes, above maxBytes (${maxBytes})`,
      );
    }
    if (!m.content || m.content.length !== m.size) {
      throw new FileOperationError(path.shown, 'changed while it was read');
    }
    return m.content;
  }

  async list(c: PooledContainer, dir: ConfinedPath, maxEntries: number): Promise<FileListing> {
    const token = `<${randomBytes(8).toString('hex')}>`;
    const limit = (maxEntries + 1) * (RECORD_BYTES + token.length * 2);
    const out = new CappedSink(limit + 1);
    const r = await this.exec(c, 'list', [dir.abs, String(limit), token], null, out, dir.shown);
    this.check(r, () => ({ field: 'dir', path: dir.shown }));
    const { records, cut } = parseRecords(out.bytes, token);
    const entries: FileEntry[] = records.map((rec) => {
      const name = rec.name.replace(/^\.\//, '');
      return {
        name,
        path: joinShown(dir, name, this.workdir),
        type: typeOf(rec.mode),
        size: rec.size,
        mode: rec.mode & 0o7777,
      };
    });
    const truncated = cut || entries.length > maxEntries;
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { entries: entries.slice(0, maxEntries), truncated };
  }

  async remove(c: PooledContainer, path: ConfinedPath): Promise<void> {
    const r = await this.exec(c, 'remove', [path.abs], null, new CappedSink(4096), path.shown);
    this.check(r, () => ({ field: 'path', path: path.shown }));
  }

  /**
   * The work dir's regular files matching the patterns, sorted by path, within the limits: a file above
   * maxFileBytes is listed with `truncated` and no content; beyond maxFiles or maxTotalBytes collecting stops
   * (`filesTruncated`). Two execs: a scan (paths, types, sizes), then one tar of the chosen files, whose bytes
   * are counted as they stream (sizes the container reports choose what to ask for, never what is kept).
   */
  async collect(
    c: PooledContainer,
    globs: Glob[],
    limits: CollectLimits,
  ): Promise<{ files: CollectedFile[]; filesTruncated: boolean }> {
    const token = `<${randomBytes(8).toString('hex')}>`;
    const depth = Math.max(...globs.map((g) => g.maxDepth));
    const dots = globs.some((g) => g.namesDotfiles) ? '1' : '0';
    const out = new CappedSink(SCAN_LIMIT_BYTES + 4096);
    const scanArgs = [
      Number.isFinite(depth) ? String(depth) : '-',
      dots,
      String(SCAN_LIMIT_BYTES),
      token,
    ];
    const r = await this.exec(c, 'scan', scanArgs, null, out, '.');
    this.check(r, () => ({ field: 'collect', path: '.' }));
    const { records, cut } = parseRecords(out.bytes, token);
    const root = records.shift()?.name;
    let filesTruncated = cut;
    if (!root) return { files: [], filesTruncated };
    const found = records
      .filter((rec) => typeOf(rec.mode) === 'file' && rec.name.startsWith(`${root}/`))
      .map((rec) => ({ path: rec.name.slice(root.length + 1), size: rec.size }))
      .filter((f) => globs.some((g) => g.matches(f.path)))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

    const files: CollectedFile[] = [];
    const wanted = new Map<string, CollectedFile>();
    let planned = 0;
    for (const f of found) {
      if (files.length >= limits.maxFiles) {
        filesTruncated = true;
        break;
      }
      const entry: CollectedFile = {
        path: f.path,
        size: f.size,
        content: Buffer.alloc(0),
        truncated: true,
      };
      if (f.size <= limits.maxFileBytes) {
        if (planned + f.size > limits.maxTotalBytes) {
          filesTruncated = true;
          break;
        }
        planned += f.size;
        wanted.set(f.path, entry);
      }
      files.push(entry);
    }
    if (!wanted.size) return { files, filesTruncated };

    // Bytes kept are capped by the budget; a member that grew past its planned size is not kept.
    let keptTotal = 0;
    const parser = new TarParser((name, _type, size) => {
      const e = wanted.get(name);
      if (!e || size > limits.maxFileBytes || keptTotal + size > limits.maxTotalBytes) return false;
      keptTotal += size;
      return true;
    }, limits.maxTotalBytes);
    const limit = planned + TAR_OVERHEAD + wanted.size * PER_MEMBER_OVERHEAD;
    const fetchArgs = [String(limit), ...[...wanted.keys()].map((p) => `./${p}`)];
    const fr = await this.exec(c, 'fetch', fetchArgs, null, parser, '.');
    this.check(fr, () => ({ field: 'collect', path: '.' }));
    const got = new Map(parser.members.filter((m) => m.content).map((m) => [m.name, m]));
    for (const [path, e] of wanted) {
      const m = got.get(path);
      if (m?.content && m.content.length === m.size) {
        e.size = m.size;
        e.content = m.content;
        e.truncated = false;
      } else {
        const member = parser.members.find((x) => x.name === path);
        if (member) {
          e.size = member.size;
          if (member.size > limits.maxFileBytes) continue;
          // It grew past what the budget had room for.
          filesTruncated = true;
        } else if (!parser.complete) {
          // The archive was cut at its byte limit (files grew since the scan): the rest is not collected.
          filesTruncated = true;
        } else {
          // Not in the whole archive: tar could not open it (its mode denies the sandbox user), or it is gone.
          e.unreadable = true;
        }
      }
    }
    return { files, filesTruncated };
  }

  /** Maps the helper's refusal to InvalidRequestError, any other failure to FileOperationError. */
  private check(
    r: { exitCode: number | null; stderr: Buffer },
    name: (ref: Refusal) => { field: string; path: string },
  ): void {
    if (r.exitCode === 0) return;
    const text = r.stderr.toString('utf8');
    const m = /CPOOL:([A-Z]+):(\d+)/.exec(text);
    if (m && REASONS[m[1]]) {
      const { field, path } = name({ reason: m[1], index: Number(m[2]) });
      throw new InvalidRequestError(field, `${JSON.stringify(path)} ${REASONS[m[1]]}`);
    }
    const { field, path } = name({ reason: m?.[1] ?? '', index: m ? Number(m[2]) : 0 });
    if (r.exitCode === 137) {
      throw new FileOperationError(path, `timed out after ${FILE_OP_TIMEOUT_MS} ms`);
    }
    if (m?.[1] === 'NOREAD') {
      throw new InvalidRequestError(
        field,
        `${JSON.stringify(path)} is not readable by the sandbox user (its mode denies it)`,
      );
    }
    throw new FileOperationError(
      path,
      `${m ? m[1].toLowerCase() : `exit ${r.exitCode}`}: ${stderrText(r.stderr) || 'no message'}`,
    );
  }

  /**
   * One exec of the helper in a leased container, bounded by `timeout -s KILL` inside and a host deadline
   * (which removes the container: the engine cannot kill one exec). The pool's shutdown and the container's loss
   * stop it as they stop an execution.
   */
  private async exec(
    c: PooledContainer,
    op: string,
    args: string[],
    stdin: Buffer | null,
    stdout: Writable,
    what: string,
  ): Promise<{ exitCode: number | null; stderr: Buffer }> {
    const { pool, transport } = this.deps;
    if (c.lostReason) throw new ContainerLostError(c.name, c.lostReason);
    if (pool.isShuttingDown) throw new PoolShuttingDownError();
    if (c.state !== 'leased') throw new ContainerReleasedError(c.name);
    const abort = new AbortController();
    const stop: { error: Error | null } = { error: null };
    const kill = (error: Error) => {
      if (abort.signal.aborted) return;
      stop.error = error;
      abort.abort();
    };
    const timer = setTimeout(
      () => kill(new FileOperationError(what, `timed out after ${FILE_OP_TIMEOUT_MS} ms`)),
      FILE_OP_TIMEOUT_MS + HOST_GRACE_MS,
    );
    let resolveDone!: () => void;
    const active: ActiveExecution = {
      kill,
      done: new Promise<void>((r) => (resolveDone = r)),
    };
    c.executions.add(active);
    pool.executionStarted();
    const stderr = new CappedSink(4096);
    const cmd = [
      'timeout',
      '-s',
      'KILL',
      String(Math.ceil(FILE_OP_TIMEOUT_MS / 1000)),
      'sh',
      '-c',
      FILES_SCRIPT,
      'cpool-files',
      this.workdir,
      op,
      ...args,
    ];
    const target = c.source.handle as DriverContainer;
    try {
      let outcome;
      try {
        outcome = await transport.run(
          target,
          { cmd, user: this.deps.options.user, env: [], workdir: '/', stdin },
          { stdout, stderr },
          abort.signal,
        );
      } catch (err) {
        c.tainted = true;
        if (err instanceof ContainerLostError && !c.lostReason) pool.lost(c, err.reason);
        if (c.lostReason) throw new ContainerLostError(c.name, c.lostReason, { cause: err });
        if (stop.error) throw stop.error;
        pool.engineFailed(err);
        throw err;
      }
      if (outcome.aborted || abort.signal.aborted) {
        c.tainted = true;
        await Promise.race([pool.destroy(c, 'file operation stopped'), sleep(KILL_WAIT_MS)]);
        throw stop.error ?? new FileOperationError(what, 'was stopped');
      }
      return { exitCode: outcome.exitCode, stderr: stderr.bytes };
    } finally {
      clearTimeout(timer);
      c.executions.delete(active);
      pool.executionEnded();
      resolveDone();
    }
  }
}

const stderrText = (b: Buffer) =>
  b
    .toString('utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('CPOOL:'))
    .join('; ')
    .slice(0, 300);

function typeOf(mode: number): FileEntryType {
  const t = mode & 0o170000;
  if (t === 0o100000) return 'file';
  if (t === 0o040000) return 'dir';
  if (t === 0o120000) return 'symlink';
  return 'other';
}

/** `<hex mode> <size> <tok><name><tok>\n` records; `cut` when the last one is incomplete. */
export function parseRecords(
  out: Buffer,
  token: string,
): { records: { mode: number; size: number; name: string }[]; cut: boolean } {
  const tok = Buffer.from(token);
  const records: { mode: number; size: number; name: string }[] = [];
  let pos = 0;
  for (;;) {
    while (pos < out.length && out[pos] === 0x0a) pos++;
    if (pos >= out.length) return { records, cut: false };
    const t1 = out.indexOf(tok, pos);
    if (t1 < 0) return { records, cut: true };
    const t2 = out.indexOf(tok, t1 + tok.length);
    if (t2 < 0) return { records, cut: true };
    const [hex, size] = out.subarray(pos, t1).toString('ascii').trim().split(/\s+/);
    records.push({
      mode: parseInt(hex, 16),
      size: Number(size),
      name: out.subarray(t1 + tok.length, t2).toString('utf8'),
    });
    pos = t2 + tok.length;
  }
}
