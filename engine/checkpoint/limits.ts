// The limits every checkpoint reader enforces, in one place. A checkpoint is untrusted input: a
// few hundred bytes of pickle can describe 2^39 paths, a 610-byte .pth a 200 MB tensor, a 1 MB
// zip a 1 GiB entry. Each limit is far above what a real model checkpoint needs and turns the
// hostile case into an InputError that names the file, the place and the limit, before any large
// allocation or long walk.
//
// Unpickler (pickle.ts)
//   MAX_MEMO_ENTRIES       1,000,000  distinct memo keys (PUT/BINPUT/LONG_BINPUT/MEMOIZE)
//   MAX_STACK_ITEMS       10,000,000  items on the stack, all MARK levels together
//   MAX_MARK_DEPTH             1,000  open MARKs (nested tuples/lists/dicts being built)
//   MAX_INT_BYTES              1,024  bytes of one LONG1/LONG4 integer, digits of a text INT/LONG
// Flattening to a state dict (state-dict.ts)
//   MAX_NESTING                1,000  dicts nested inside each other (walked iteratively: no JS stack overflow)
//   MAX_ENTRIES            1,000,000  flattened names, tensors and skipped entries together
//   A dict that contains itself is refused ("self-referencing object"); a dict reached a second
//   time through another key (a shared, memoized dict: the "billion laughs" pickle) is flattened
//   once, at its first path, and the other paths are reported as skipped. A tensor or array
//   reached through several names is materialised once and shared.
// Materialising tensors (torch-tensor.ts, numpy-array.ts)
//   MAX_TENSOR_BYTES           4 GiB  one materialised tensor
//   MAX_BROADCAST_BYTES       16 MiB  a view with more elements than its storage holds (stride 0,
//                                     overlapping strides): larger ones are refused
//   total materialised bytes  <= 2 x the bytes the file holds (uncompressed) + 64 MiB
//                                     (MATERIALIZE_FACTOR, MATERIALIZE_SLACK_BYTES)
// Zip archives (pth.ts), checked on the central directory's declared sizes before inflating
//   MAX_ZIP_TOTAL_BYTES        8 GiB  all entries, uncompressed
//   MAX_ZIP_RATIO                 64  uncompressed / compressed size of a deflated entry, unless
//                                     it is at most ZIP_RATIO_FREE_BYTES (1 MiB) uncompressed
// safetensors (safetensors.ts): header at most 100,000,000 bytes, as the reference reader.
import { promises as fsp } from 'node:fs';
import { InputError, UserError } from '../../runtime/errors';

export const MAX_MEMO_ENTRIES = 1_000_000;
export const MAX_STACK_ITEMS = 10_000_000;
export const MAX_MARK_DEPTH = 1_000;
export const MAX_INT_BYTES = 1_024;

export const MAX_NESTING = 1_000;
export const MAX_ENTRIES = 1_000_000;

export const MAX_TENSOR_BYTES = 4 * 1024 ** 3;
export const MAX_BROADCAST_BYTES = 16 * 1024 ** 2;
export const MATERIALIZE_FACTOR = 2;
export const MATERIALIZE_SLACK_BYTES = 64 * 1024 ** 2;

export const MAX_ZIP_TOTAL_BYTES = 8 * 1024 ** 3;
export const MAX_ZIP_RATIO = 64;
export const ZIP_RATIO_FREE_BYTES = 1024 ** 2;

/**
 * A short description of an unpickled value for messages ("a sequence of 3", "string \"abc\"",
 * "a dict"). Never recursive: String() of a 30,000-deep nested tuple overflows the JS stack.
 */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (Array.isArray(v)) return `a sequence of ${v.length}`;
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return `a set of ${v.size}`;
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`;
  const s = typeof v === 'bigint' ? String(v) : (JSON.stringify(v) ?? String(v));
  return `${typeof v} ${s.length > 80 ? `${s.slice(0, 77)}...` : s}`;
}

/** A dict key as a name part: strings and numbers as they are, anything else described. */
export function keyText(k: unknown): string {
  return typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean' ? String(k) : `<${describeValue(k)}>`;
}

/** Bytes as "190.7 MiB" for messages. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/**
 * How many bytes of tensors one checkpoint may materialise in total: MATERIALIZE_FACTOR x the
 * bytes the file holds (uncompressed) + MATERIALIZE_SLACK_BYTES. Every tensor and numpy array
 * asks it before allocating.
 */
export class MaterializeBudget {
  private used = 0;
  readonly limit: number;

  constructor(
    readonly file: string,
    sourceBytes: number,
  ) {
    this.limit = MATERIALIZE_FACTOR * sourceBytes + MATERIALIZE_SLACK_BYTES;
  }

  /** Reserves `bytes` for the tensor at `where`, or throws an InputError naming the limit. */
  take(where: string, bytes: number, what: string): void {
    if (!Number.isSafeInteger(bytes) || bytes > MAX_TENSOR_BYTES) {
      throw new InputError(this.file, where, `${what} would take ${Number.isFinite(bytes) ? formatBytes(bytes) : 'an unbounded amount of memory'}; one tensor may take at most ${formatBytes(MAX_TENSOR_BYTES)}`);
    }
    if (this.used + bytes > this.limit) {
      throw new InputError(
        this.file,
        where,
        `${what} would bring the tensors materialised from this checkpoint to ${formatBytes(this.used + bytes)}, more than the ${formatBytes(this.limit)} allowed for a file of this size (${MATERIALIZE_FACTOR} x its data + ${formatBytes(MATERIALIZE_SLACK_BYTES)}): views that repeat the same storage many times?`,
      );
    }
    this.used += bytes;
  }
}

/**
 * The bytes of a checkpoint file. A directory, a device or a FIFO (`/dev/zero` would be read until
 * memory runs out) is an InputError naming the file, before anything is read.
 */
export async function readCheckpointFile(file: string): Promise<Buffer> {
  let st;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
  if (st.isDirectory()) throw new InputError(file, undefined, 'is a directory, expected a checkpoint file');
  if (!st.isFile()) throw new InputError(file, undefined, 'is not a regular file (a device, pipe or socket), expected a checkpoint file');
  try {
    return await fsp.readFile(file);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
}
