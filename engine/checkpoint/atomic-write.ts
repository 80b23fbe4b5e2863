// Writes a file so that readers never see a half-written one: the bytes go to a temporary file
// in the same directory (same filesystem, so rename is atomic), which is then renamed over OUT.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export async function writeFileAtomic(file: string, chunks: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx');
  try {
    try {
      for (const c of chunks instanceof Uint8Array ? [chunks] : chunks) await handle.write(c);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
