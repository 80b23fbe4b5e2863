// safetensors read and write (https://github.com/huggingface/safetensors, format section):
//   u64 little-endian N | N bytes of JSON header, space-padded | raw little-endian tensor data.
// The header maps each name to {dtype, shape, data_offsets: [begin, end]} (relative to the data
// section) plus an optional "__metadata__" string->string map. Like the reference reader we
// insist that the tensors tile the data section exactly (no overlap, no gap, nothing missing),
// so a truncated or hand-damaged file is caught before any tensor is used. Like the reference
// writer we order tensors by decreasing alignment, then by name, and pad the header to 8 bytes,
// so every tensor's data starts aligned for its dtype.
import { closeSync, fstatSync, openSync, promises as fs, readSync } from 'node:fs';
import { InputError, UserError } from '../../runtime/errors';
import { writeFileAtomic } from './atomic-write';
import { DTYPE_BYTES, isDType, numel, tensorBytes, typedArrayFromBytes, type DType, type HostTensor } from './host-tensor';
import { readCheckpointFile } from './limits';

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/** Same limit as the reference implementation: a larger header is a corrupt length field. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
/** Dtypes the format defines that we do not read, so their error says "unsupported", not "unknown". */
const OTHER_DTYPES = ['BF16', 'I16', 'U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3'];

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

interface Layout {
  /** Offset of the data section: 8 + the header length. */
  dataStart: number;
  entries: Entry[];
  metadata: Record<string, string>;
}

/**
 * Validates the length field, the JSON header and the offsets of a file of `fileSize` bytes whose
 * first bytes are `head` (at least the 8-byte length and the header; the data section is not
 * needed). Every error names the file, the part and what was expected.
 */
function parseLayout(head: Uint8Array, fileSize: number, file: string): Layout {
  const bytes = head;
  if (fileSize < 8 || bytes.byteLength < 8) {
    throw new InputError(file, 'header length', `file is ${fileSize} bytes; a safetensors file starts with an 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new InputError(file, 'header length', `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  const headerLen = Number(n);
  if (8 + headerLen > fileSize) {
    throw new InputError(file, 'header length', `header length ${headerLen} runs past the end of the ${fileSize}-byte file (truncated?)`);
  }
  if (8 + headerLen > bytes.byteLength) throw new Error(`${file}: parseLayout needs the first ${8 + headerLen} bytes`);
  const headerBytes = bytes.subarray(8, 8 + headerLen);
  if (headerBytes[0] !== 0x7b /* { */) {
    throw new InputError(file, 'header', 'the JSON header must start with "{"');
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new InputError(file, 'header', `not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new InputError(file, 'header', 'the JSON header must be an object');
  }

  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new InputError(file, METADATA_KEY, 'must be an object of string values');
      }
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw new InputError(file, `${METADATA_KEY}.${k}`, `metadata values must be strings, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(file, name, info, dataLen));
  }

  // The tensors must tile [0, dataLen) exactly, in offset order.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: Entry | undefined;
  for (const e of byOffset) {
    if (e.begin < cursor) {
      throw new InputError(file, `tensor "${e.name}"`, `data_offsets [${e.begin}, ${e.end}] overlap tensor "${prev!.name}" [${prev!.begin}, ${prev!.end}]`);
    }
    if (e.begin > cursor) {
      throw new InputError(file, `tensor "${e.name}"`, `data_offsets start at ${e.begin}, leaving a gap after byte ${cursor} of the data section`);
    }
    cursor = e.end;
    prev = e;
  }
  if (cursor !== dataLen) {
    throw new InputError(file, 'data section', `tensors cover ${cursor} bytes but the data section has ${dataLen} (trailing bytes)`);
  }
  return { dataStart, entries, metadata };
}

export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsFile {
  const { dataStart, entries, metadata } = parseLayout(bytes, bytes.byteLength, file);
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const data = typedArrayFromBytes(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data } as HostTensor);
  }
  return { tensors, metadata };
}

function parseEntry(file: string, name: string, info: unknown, dataLen: number): Entry {
  const where = `tensor "${name}"`;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    throw new InputError(file, where, 'expected an object with dtype, shape and data_offsets');
  }
  const fields = info as Record<string, unknown>;
  const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => !(k in fields));
  if (missing.length) {
    throw new InputError(file, where, `missing ${missing.map((k) => `"${k}"`).join(', ')}; expected an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = fields;
  if (!isDType(dtype)) {
    const why = typeof dtype === 'string' && OTHER_DTYPES.includes(dtype) ? 'unsupported' : 'unknown';
    throw new InputError(file, where, `${why} dtype ${JSON.stringify(dtype)}; expected one of F32, F16, F64, I8, U8, I32, I64, BOOL`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InputError(file, where, `shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new InputError(file, where, `data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new InputError(file, where, `data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLen) {
    throw new InputError(file, where, `data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data section (truncated file?)`);
  }
  const expected = numel(shape) * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(expected)) {
    throw new InputError(file, where, `${dtype} shape [${shape.join(', ')}] is too large to be stored (data_offsets [${begin}, ${end}] hold ${end - begin} bytes)`);
  }
  if (end - begin !== expected) {
    throw new InputError(file, where, `${dtype} shape [${shape.join(', ')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  const bytes = await readCheckpointFile(file);
  return parseSafetensors(bytes, file);
}

/** Largest alignment first, as the reference writer orders them (then by name). */
const WRITE_ORDER: DType[] = ['I64', 'F64', 'F32', 'I32', 'F16', 'I8', 'U8', 'BOOL'];

/** Encodes tensors as a safetensors file: header, padding and data chunks, in file order. */
export function serializeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): Uint8Array[] {
  const list = [...(tensors instanceof Map ? tensors : Object.entries(tensors))];
  for (const [name, t] of list) {
    if (name === METADATA_KEY) throw new Error(`a tensor cannot be named ${METADATA_KEY}`);
    if (t.data.length !== numel(t.shape)) throw new Error(`tensor "${name}": shape [${t.shape}] does not match ${t.data.length} elements`);
  }
  list.sort(([an, a], [bn, b]) => WRITE_ORDER.indexOf(a.dtype) - WRITE_ORDER.indexOf(b.dtype) || (an < bn ? -1 : an > bn ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    const size = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  return [len, json, ...list.map(([, t]) => tensorBytes(t))];
}

/** What a file must hold to count as written: its exact header bytes and its size. */
export interface SafetensorsExpectation {
  header: Uint8Array;
  size: number;
}

/**
 * Re-reads a safetensors file's length field, header and size from disk (not the tensor data)
 * and validates them as the reader would: the header parses, every tensor has a known dtype, a
 * shape whose byte size matches its data_offsets, and the offsets tile the data section up to the
 * file's end. With `expected`, the header must also be byte-for-byte the one written and the size
 * the one meant. `name` is used in the messages (default: `file`). Throws InputError.
 */
export function verifySafetensorsFile(file: string, expected?: SafetensorsExpectation, name = file): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new UserError(`cannot read ${name}: ${(err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const readAt = (len: number, pos: number): Uint8Array => {
      const b = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const k = readSync(fd, b, got, len - got, pos + got);
        if (k === 0) break;
        got += k;
      }
      return b.subarray(0, got);
    };
    const lenField = readAt(8, 0);
    let head = lenField;
    if (lenField.byteLength === 8) {
      const n = new DataView(lenField.buffer).getBigUint64(0, true);
      if (n <= BigInt(MAX_HEADER_BYTES) && Number(n) + 8 <= size) {
        head = new Uint8Array(8 + Number(n));
        head.set(lenField);
        head.set(readAt(Number(n), 8), 8);
      }
    }
    parseLayout(head, size, name); // throws on anything wrong, before the header is needed if the length is
    if (expected) {
      if (size !== expected.size) throw new InputError(name, 'file size', `is ${size} bytes; ${expected.size} were written`);
      const got = head.subarray(8);
      if (got.byteLength !== expected.header.byteLength || !got.every((b, i) => b === expected.header[i])) {
        throw new InputError(name, 'header', 'differs from the header that was written');
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a safetensors file durably and atomically (runtime/durable-write.ts: temporary file,
 * checked writes, fsync, rename). Before the rename the temporary file is re-read
 * (verifySafetensorsFile against the header and size written), so a file that replaces the
 * target is known to parse. Throws WriteError; the previous file stays on any failure.
 */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const chunks = serializeSafetensors(tensors, metadata);
  const expected = { header: chunks[1]!, size: chunks.reduce((a, c) => a + c.byteLength, 0) };
  await writeFileAtomic(file, chunks, { verify: (tmp) => verifySafetensorsFile(tmp, expected, file) });
}
