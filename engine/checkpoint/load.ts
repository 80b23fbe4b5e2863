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
import { readCheckpointFile } from './limits';

export type CheckpointFormat = 'torch-zip' | 'torch-legacy' | 'pickle' | 'safetensors';

export interface LoadedCheckpoint {
  format: CheckpointFormat;
  tensors: Map<string, HostTensor>;
  /** Non-tensor entries that were skipped, as "path (what)". */
  ignored: string[];
  /** safetensors `__metadata__`; empty for other formats. */
  metadata: Record<string, string>;
}

/** A u64 header length under 4 GiB (high bytes zero) followed by `{`: a safetensors file, maybe a
 *  damaged one (length past the end, bad JSON, bad offsets), whose parse then says what is wrong.
 *  No pickle starts like this (its bytes 4-7 are opcodes or text, or byte 8 is a frame length's). */
function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[8] === 0x7b && bytes[4] === 0 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0;
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
  // Content that matches no format, or a pickle that fails, in a file named .safetensors gets the
  // safetensors reader's diagnosis (too short for the length field, absurd header length, ...).
  const namedSafetensors = /\.safetensors$/i.test(file);
  if (looksLikePickle(bytes)) {
    try {
      const first = unpickle(bytes, 0, { file, globals: ALLOWED_GLOBALS });
      if (first.value === LEGACY_MAGIC) return { format: 'torch-legacy', metadata: {}, ...readTorchLegacy(bytes, file) };
      return { format: 'pickle', metadata: {}, ...toStateDict(first.value, file, { sourceBytes: bytes.byteLength }) };
    } catch (err) {
      if (namedSafetensors) parseSafetensors(bytes, file);
      throw err;
    }
  }
  if (namedSafetensors) parseSafetensors(bytes, file);
  throw new InputError(file, 'offset 0', 'not a checkpoint: expected a PyTorch .pth (zip or legacy), a pickled .pkl or a .safetensors file');
}

export async function loadCheckpoint(file: string): Promise<LoadedCheckpoint> {
  const bytes = await readCheckpointFile(file);
  return parseCheckpoint(bytes, file);
}

