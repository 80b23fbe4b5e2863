// Atomic, durable outputs: thin names over runtime/durable-write.ts (temp file beside the target,
// every write's byte count checked, fsync, rename, directory fsync). A crash or a thrown error
// never leaves a half-written output behind, and a failed write throws one WriteError
// `PATH: could not write: REASON` with the previous file intact.
import { writeFileDurable, writeFilesDurable } from '../../runtime/durable-write';

export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  writeFileDurable(target, data);
}

export function writeJsonAtomic(target: string, value: unknown, indent = 2): void {
  writeFileDurable(target, JSON.stringify(value, null, indent) + '\n');
}

/** Several outputs that appear together or not at all (all written and synced under temporary
 *  names before any is renamed into place); a failure leaves every previous file as it was. */
export function writeFilesAtomic(files: readonly { path: string; data: string | Uint8Array }[]): void {
  writeFilesDurable(files);
}

/** JSON for writeFilesAtomic: `{ path, data }` with the same text as writeJsonAtomic. */
export const jsonFile = (path: string, value: unknown, indent = 2): { path: string; data: string } => ({ path, data: JSON.stringify(value, null, indent) + '\n' });

/**
 * A streamed text output (for large CSVs) that only appears under its final name on commit();
 * abort() removes the temp file. `withAtomicText` runs a body with one: commits on success, removes
 * the temp file on any error.
 */
export { DurableTextWriter as AtomicTextWriter, withDurableText as withAtomicText } from '../../runtime/durable-write';
