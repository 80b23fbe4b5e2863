// Writes a file so that readers never see a half-written one: runtime/durable-write.ts (temporary
// file in the same directory, every write's byte count checked, fsync, rename, directory fsync).
// A full disk or any other failure throws WriteError `PATH: could not write: REASON`, removes the
// temporary file and leaves the previous file as it was.
import { writeFileDurableAsync, type DurableOptions } from '../../runtime/durable-write';

/** `opts.verify` reads the fsynced temporary file back before it replaces `file`. */
export async function writeFileAtomic(file: string, chunks: Uint8Array | readonly Uint8Array[], opts: Pick<DurableOptions, 'verify'> = {}): Promise<void> {
  await writeFileDurableAsync(file, chunks, opts);
}
