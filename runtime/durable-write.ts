// Durable, verified file writes: the one writer every output of the repository goes through
// (pipeline/io/atomic.ts and engine/checkpoint/atomic-write.ts are thin wrappers over it).
//
//   1. the bytes go to a temporary file `.<name>.<pid>.<8 hex>.tmp` in the target's directory
//      (same filesystem, so the final rename is atomic);
//   2. every write's byte count is checked: a partial write is continued where it stopped, a write
//      that accepts 0 bytes is treated as a full disk, and the file's size is compared with the
//      number of bytes meant before it counts;
//   3. the file is fsynced, optionally read back (`verify`), renamed over the target, and the directory is fsynced so that the
//      rename itself survives a power cut.
// On any failure the temporary file is removed, the previous target (if any) is left as it was,
// and one WriteError `PATH: could not write: REASON` is thrown (the CLI prints it as one line).
//
// Tests inject failures through `DurableFs`: pass `{ fs }` in the options, or swap the module's
// default with `setDurableFs` (for code that calls the writer several layers down).
import * as nodeFs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, WriteError } from './errors';

/** The file operations the writer uses (node:fs semantics). */
export interface DurableFs {
  mkdirSync(path: string, options: { recursive: true }): unknown;
  openSync(path: string, flags: string, mode?: number): number;
  /** Returns the number of bytes written, which may be fewer than `length`. */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Async write: resolves to the number of bytes written. */
  write(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fstatSync(fd: number): { size: number };
  fsyncSync(fd: number): void;
  fsync(fd: number): Promise<void>;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options: { force: true }): void;
  readdirSync(path: string): string[];
}

/** The real filesystem. */
export const nodeDurableFs: DurableFs = {
  mkdirSync: (p, o) => nodeFs.mkdirSync(p, o),
  openSync: (p, f, m) => nodeFs.openSync(p, f, m),
  writeSync: (fd, b, o, l, p) => nodeFs.writeSync(fd, b, o, l, p),
  write: (fd, b, o, l, p) => new Promise((res, rej) => nodeFs.write(fd, b, o, l, p, (err, n) => (err ? rej(err) : res(n)))),
  fstatSync: (fd) => nodeFs.fstatSync(fd),
  fsyncSync: (fd) => nodeFs.fsyncSync(fd),
  fsync: (fd) => new Promise((res, rej) => nodeFs.fsync(fd, (err) => (err ? rej(err) : res()))),
  closeSync: (fd) => nodeFs.closeSync(fd),
  renameSync: (a, b) => nodeFs.renameSync(a, b),
  rmSync: (p, o) => nodeFs.rmSync(p, o),
  readdirSync: (p) => nodeFs.readdirSync(p),
};

let defaultFs: DurableFs = nodeDurableFs;

/** Replaces the filesystem every writer uses when none is passed (tests only); returns a function
 *  that restores the previous one. Missing operations fall back to the real ones. */
export function setDurableFs(fs: Partial<DurableFs>): () => void {
  const prev = defaultFs;
  defaultFs = { ...nodeDurableFs, ...fs };
  return () => {
    defaultFs = prev;
  };
}

export interface DurableOptions {
  /** Overrides the module's filesystem (tests). */
  fs?: Partial<DurableFs>;
  /** Create the target's directory if it does not exist (default true). */
  mkdir?: boolean;
  /** Reads the written, fsynced temporary file back before it is renamed into place; throwing
   *  fails the write (the previous target stays). For formats that can check themselves. */
  verify?: (tmp: string) => void;
}

/** Largest single write request (Node refuses lengths over 2 GiB). */
const MAX_WRITE = 64 * 1024 * 1024;
/** The streaming writer writes once this many bytes are buffered. */
const TEXT_FLUSH_BYTES = 1 << 20;
/** Directory fsync is not possible everywhere (Windows, some network filesystems): these mean "cannot", not "failed". */
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EPERM', 'EACCES', 'EBADF']);

const TEMP_RE = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.tmp$/;

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** `err`'s cause in words, with its code: "no space left on device (ENOSPC)". */
function reasonOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a component of the path is not a directory',
    EISDIR: 'the path is a directory',
    EIO: 'input/output error',
    EMFILE: 'too many open files',
    EFBIG: 'file too large for the file system',
    EXDEV: 'the temporary file and the target are on different file systems',
  };
  if (code && words[code]) return `${words[code]} (${code})`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * For writers that do not go through this module (an appended log, a directory built in place):
 * a file-system error (one with an errno code) becomes WriteError `PATH: could not write: REASON`;
 * anything else is returned unchanged. Use as `catch (err) { throw asWriteError(err, path); }`.
 */
export function asWriteError(err: unknown, path: string): unknown {
  if (err instanceof WriteError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return err;
  return new WriteError(path, reasonOf(err), { cause: err });
}

/** A failure already put in words (short write, size mismatch): its message is the reason. */
class Reason extends Error {}

class Step {
  constructor(
    readonly fs: DurableFs,
    readonly target: string,
    readonly tmp: string,
  ) {}
  /** Runs `fn`; a failure becomes "REASON while STEP". */
  do<T>(step: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.error(err, step);
    }
  }
  async doAsync<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.error(err, step);
    }
  }
  error(err: unknown, step?: string): WriteError {
    if (err instanceof WriteError) return err;
    const reason = err instanceof Reason ? err.message : `${reasonOf(err)}${step ? ` (while ${step})` : ''}`;
    return new WriteError(this.target, reason, { cause: err });
  }
}

function checkCount(n: unknown, asked: number, done: number, total: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > asked) {
    throw new Reason(`write returned ${String(n)} for a request of ${asked} bytes`);
  }
  if (n === 0) {
    throw new Reason(`the file system accepted 0 bytes after ${done} of ${total} (disk full?)`);
  }
  return n;
}

function writeAllSync(fs: DurableFs, fd: number, data: Uint8Array, pos: number, total: number): number {
  let off = 0;
  while (off < data.byteLength) {
    const len = Math.min(data.byteLength - off, MAX_WRITE);
    off += checkCount(fs.writeSync(fd, data, off, len, pos + off), len, pos + off, total);
  }
  return pos + off;
}

async function writeAllAsync(fs: DurableFs, fd: number, data: Uint8Array, pos: number, total: number): Promise<number> {
  let off = 0;
  while (off < data.byteLength) {
    const len = Math.min(data.byteLength - off, MAX_WRITE);
    off += checkCount(await fs.write(fd, data, off, len, pos + off), len, pos + off, total);
  }
  return pos + off;
}

function checkSize(fs: DurableFs, fd: number, want: number): void {
  const size = fs.fstatSync(fd).size;
  if (size !== want) throw new Reason(`the temporary file holds ${size} bytes after writing ${want}`);
}

function syncDir(fs: DurableFs, dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return; // cannot open a directory here (Windows): nothing to sync
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      // already failed or closed: nothing more to do
    }
  }
}

function cleanup(fs: DurableFs, fd: number | undefined, tmp: string): void {
  if (fd !== undefined) {
    try {
      fs.closeSync(fd);
    } catch {
      // the descriptor may already be closed
    }
  }
  try {
    fs.rmSync(tmp, { force: true });
  } catch {
    // nothing more can be done; the name is recognisable for removeStaleTemps
  }
}

const toBytes = (c: string | Uint8Array): Uint8Array => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c);
const chunksOf = (data: string | Uint8Array | readonly (string | Uint8Array)[]): Uint8Array[] =>
  typeof data === 'string' || data instanceof Uint8Array ? [toBytes(data)] : data.map(toBytes);

function runVerify(s: Step, verify: ((tmp: string) => void) | undefined): void {
  if (!verify) return;
  try {
    verify(s.tmp);
  } catch (err) {
    // An InputError about the file says "FILE: WHERE: PROBLEM"; the FILE is already in the message.
    const what = err instanceof InputError ? `${err.where ? `${err.where}: ` : ''}${err.problem}` : err instanceof Error ? err.message : String(err);
    throw new Reason(`the written file does not read back as written: ${what}`);
  }
}

function begin(target: string, opts: DurableOptions): { s: Step; fd: number } {
  const fs: DurableFs = opts.fs ? { ...defaultFs, ...opts.fs } : defaultFs;
  const tmp = tempPathFor(target);
  const s = new Step(fs, target, tmp);
  const dir = dirname(resolve(target));
  // A recursive mkdir under /proc or /sys never returns (Node retries ENOENT there): refuse first.
  const pseudo = ['/proc', '/sys'].find((p) => dir === p || dir.startsWith(`${p}/`));
  if (pseudo) throw new WriteError(target, `${pseudo} is a pseudo file system, not a place for files`);
  if (opts.mkdir !== false) s.do('creating its directory', () => fs.mkdirSync(dir, { recursive: true }));
  const fd = s.do('creating a temporary file in its directory', () => fs.openSync(tmp, 'wx', 0o666));
  return { s, fd };
}

/** Every byte of `data` into the open temporary file (each write's count checked), its size checked,
 *  fsynced, and the caller's verification run on it. */
function writeChecked(s: Step, fd: number, data: string | Uint8Array | readonly (string | Uint8Array)[], opts: DurableOptions): void {
  const chunks = chunksOf(data);
  const total = chunks.reduce((a, c) => a + c.byteLength, 0);
  let pos = 0;
  for (const c of chunks) pos = s.do('writing', () => writeAllSync(s.fs, fd, c, pos, total));
  s.do('checking the written size', () => checkSize(s.fs, fd, total));
  s.do('flushing it to disk (fsync)', () => s.fs.fsyncSync(fd));
  runVerify(s, opts.verify);
}

/** After the bytes are written, checked and fsynced: close, rename over the target, fsync the directory. */
function finish(s: Step, fd: number): void {
  const { fs } = s;
  s.do('closing it', () => fs.closeSync(fd));
  s.do('renaming the temporary file into place', () => fs.renameSync(s.tmp, s.target));
  try {
    syncDir(fs, dirname(resolve(s.target)));
  } catch (err) {
    throw new WriteError(s.target, `${reasonOf(err)} (while syncing the directory after the rename: the new file is in place but may not survive a crash)`, { cause: err });
  }
}

/** Writes `data` (text is UTF-8) durably and atomically; throws WriteError. */
export function writeFileDurable(target: string, data: string | Uint8Array | readonly (string | Uint8Array)[], opts: DurableOptions = {}): void {
  const { s, fd } = begin(target, opts);
  let open = true;
  try {
    writeChecked(s, fd, data, opts);
    open = false;
    finish(s, fd);
  } catch (err) {
    cleanup(s.fs, open ? fd : undefined, s.tmp);
    throw s.error(err);
  }
}

/**
 * Several outputs that appear together or not at all: every file is written, checked, fsynced and
 * verified under its temporary name first, and only when all of them are, they are renamed into
 * place one after another. A failure before the renames removes every temporary file and leaves
 * every previous target as it was. (The renames themselves, in one directory on one file system,
 * fail only if the directory changes under the command; then the files renamed so far stay.)
 */
export function writeFilesDurable(files: readonly { path: string; data: string | Uint8Array | readonly (string | Uint8Array)[] }[], opts: DurableOptions = {}): void {
  const staged: { s: Step; fd: number }[] = [];
  try {
    for (const f of files) {
      const { s, fd } = begin(f.path, opts);
      let open = true;
      staged.push({ s, fd });
      try {
        writeChecked(s, fd, f.data, opts);
        open = false;
        s.do('closing it', () => s.fs.closeSync(fd));
      } catch (err) {
        if (open) cleanup(s.fs, fd, s.tmp);
        staged.pop();
        throw s.error(err);
      }
    }
  } catch (err) {
    for (const { s } of staged) cleanup(s.fs, undefined, s.tmp);
    throw err;
  }
  for (const [i, { s }] of staged.entries()) {
    try {
      s.do('renaming the temporary file into place', () => s.fs.renameSync(s.tmp, s.target));
    } catch (err) {
      for (const rest of staged.slice(i)) cleanup(rest.s.fs, undefined, rest.s.tmp);
      throw err;
    }
  }
  const dirs = new Set(staged.map(({ s }) => dirname(resolve(s.target))));
  for (const dir of dirs) {
    try {
      syncDir(staged[0]!.s.fs, dir);
    } catch (err) {
      throw new WriteError(dir, `${reasonOf(err)} (while syncing the directory after the renames: the new files are in place but may not survive a crash)`, { cause: err });
    }
  }
}

/** The async form of writeFileDurable: writes and the file's fsync do not block the event loop. */
export async function writeFileDurableAsync(target: string, data: string | Uint8Array | readonly (string | Uint8Array)[], opts: DurableOptions = {}): Promise<void> {
  const { s, fd } = begin(target, opts);
  let open = true;
  try {
    const chunks = chunksOf(data);
    const total = chunks.reduce((a, c) => a + c.byteLength, 0);
    let pos = 0;
    for (const c of chunks) pos = await s.doAsync('writing', () => writeAllAsync(s.fs, fd, c, pos, total));
    s.do('checking the written size', () => checkSize(s.fs, fd, total));
    await s.doAsync('flushing it to disk (fsync)', () => s.fs.fsync(fd));
    runVerify(s, opts.verify);
    open = false;
    finish(s, fd);
  } catch (err) {
    cleanup(s.fs, open ? fd : undefined, s.tmp);
    throw s.error(err);
  }
}

/**
 * A streamed UTF-8 text output (large CSVs) that appears under its final name only on commit();
 * abort() removes the temporary file. Text is buffered and written in ~1 MiB pieces; write()
 * resolves once its piece is written, so a huge output does not pile up in memory.
 */
export class DurableTextWriter {
  private readonly s: Step;
  private fd: number | undefined;
  private parts: string[] = [];
  private buffered = 0;
  private pos = 0;
  private queue: Promise<void> = Promise.resolve();
  private failure: WriteError | undefined;
  private done = false;
  private readonly verify: DurableOptions['verify'];

  constructor(
    readonly target: string,
    opts: DurableOptions = {},
  ) {
    this.verify = opts.verify;
    const { s, fd } = begin(target, opts);
    this.s = s;
    this.fd = fd;
  }

  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.done) throw new Error(`${this.target}: write after commit/abort`);
    this.parts.push(text);
    this.buffered += text.length;
    if (this.buffered >= TEXT_FLUSH_BYTES) await this.flush();
  }

  /** Queues the buffered text for writing (in order) and waits for it. */
  private flush(): Promise<void> {
    const bytes = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.buffered = 0;
    this.queue = this.queue.then(async () => {
      if (this.failure || this.fd === undefined) return;
      try {
        this.pos = await writeAllAsync(this.s.fs, this.fd, bytes, this.pos, this.pos + bytes.byteLength);
      } catch (err) {
        this.failure = this.s.error(err, 'writing');
      }
    });
    return this.queue.then(() => {
      if (this.failure) throw this.failure;
    });
  }

  async commit(): Promise<void> {
    if (this.done) throw new Error(`${this.target}: commit after commit/abort`);
    try {
      await this.flush();
      const fd = this.fd!;
      this.s.do('checking the written size', () => checkSize(this.s.fs, fd, this.pos));
      await this.s.doAsync('flushing it to disk (fsync)', () => this.s.fs.fsync(fd));
      runVerify(this.s, this.verify);
      this.fd = undefined;
      this.done = true;
      finish(this.s, fd);
    } catch (err) {
      this.abort();
      throw this.s.error(err);
    }
  }

  /** Discards the output: closes and removes the temporary file; the target is untouched. */
  abort(): void {
    this.done = true;
    const fd = this.fd;
    this.fd = undefined;
    cleanup(this.s.fs, fd, this.s.tmp);
  }
}

/** Runs `body` with a DurableTextWriter; commits on success, removes the temporary file on any error. */
export async function withDurableText<T>(target: string, body: (w: DurableTextWriter) => Promise<T>, opts: DurableOptions = {}): Promise<T> {
  const w = new DurableTextWriter(target, opts);
  let result: T;
  try {
    result = await body(w);
  } catch (err) {
    w.abort();
    throw err;
  }
  await w.commit(); // removes its temporary file itself on failure
  return result;
}

/**
 * Deletes the temporary files a killed write left in `dir` (`.<base>.<pid>.<hex>.tmp`): those of
 * the one file `base`, or of every file whose name `base` accepts. Returns the names removed.
 * Call it only where no other process is writing the same files (e.g. at the start of a run).
 */
export function removeStaleTemps(dir: string, base: string | ((name: string) => boolean), opts: Pick<DurableOptions, 'fs'> = {}): string[] {
  const fs: DurableFs = opts.fs ? { ...defaultFs, ...opts.fs } : defaultFs;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new WriteError(dir, `${reasonOf(err)} (while listing it to remove stale temporary files)`, { cause: err });
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m) continue;
    const keep = typeof base === 'string' ? m[1] !== base : !base(m[1]!);
    if (keep || Number(m[2]) === process.pid) continue;
    try {
      fs.rmSync(join(dir, name), { force: true });
      removed.push(name);
    } catch (err) {
      throw new WriteError(join(dir, name), `${reasonOf(err)} (while removing this stale temporary file)`, { cause: err });
    }
  }
  return removed;
}
