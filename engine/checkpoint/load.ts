// Opens any checkpoint we understand and returns its tensors by name. The format is decided by
// the content, not the extension: zip magic -> torch zip .pth; a u64 length followed by '{' ->
// safetensors; otherwise a pickle, which is a legacy .pth if its first object is torch's magic
// number and a plain .pkl otherwise.
import { promises as fs } from 'node:fs';
import { InputError, UserError } from '../../runtime/errors';
import type { HostTensor } from './host-tensor';
import { unpicklePlain } from './pkl';
import { LEGACY_MAGIC, isZip, readTorchLegacy, readTorchZip } from './pth';
import { parseSafetensors } from './safetensors';
import { toStateDict } from './state-dict';
import { unpickle } from './pickle';
import { ALLOWED_GLOBALS } from './allowed-globals';

export type CheckpointFormat = 'torch-zip' | 'torch-legacy' | 'pickle' | 'safetensors';

export interface LoadedCheckpoint {
  format: CheckpointFormat;
  tensors: Map<string, HostTensor>;
  /** Non-tensor entries that were skipped, as "path (what)". */
  ignored: string[];
  /** safetensors `__metadata__`; empty for other formats. */
  metadata: Record<string, string>;
}

/** u64 header length within the file, then `{` and (after spaces) `"` or `}`. */
function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10 || bytes[8] !== 0x7b) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  let i = 9;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a)) i++;
  return n >= 2n && n <= BigInt(bytes.length - 8) && (bytes[i] === 0x22 || bytes[i] === 0x7d);
}

/** Pickle streams start with PROTO (protocol 2+) or, for protocols 0/1, a container opcode. */
function looksLikePickle(bytes: Uint8Array): boolean {
  return bytes.length > 1 && (bytes[0] === 0x80 || bytes[0] === 0x28 || bytes[0] === 0x7d || bytes[0] === 0x5d);
}

export function parseCheckpoint(bytes: Uint8Array, file: string): LoadedCheckpoint {
  if (isZip(bytes)) return { format: 'torch-zip', metadata: {}, ...readTorchZip(bytes, file) };
  if (looksLikeSafetensors(bytes)) {
    const { tensors, metadata } = parseSafetensors(bytes, file);
    return { format: 'safetensors', tensors, metadata, ignored: [] };
  }
  if (looksLikePickle(bytes)) {
    const first = unpickle(bytes, 0, { file, globals: ALLOWED_GLOBALS });
    if (first.value === LEGACY_MAGIC) return { format: 'torch-legacy', metadata: {}, ...readTorchLegacy(bytes, file) };
    return { format: 'pickle', metadata: {}, ...toStateDict(first.value, file) };
  }
  throw new InputError(file, 'offset 0', 'not a checkpoint: expected a PyTorch .pth (zip or legacy), a pickled .pkl or a .safetensors file');
}

export async function loadCheckpoint(file: string): Promise<LoadedCheckpoint> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseCheckpoint(bytes, file);
}

