// Atomic output: write to a temp file beside the target, then rename over it. A crash or a thrown
// error never leaves a half-written output behind (rename is atomic within one filesystem).
import { createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now().toString(36)}.tmp`);
}

export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  mkdirSync(dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeJsonAtomic(target: string, value: unknown, indent = 2): void {
  writeFileAtomic(target, JSON.stringify(value, null, indent) + '\n');
}

/**
 * A streamed text output (for large CSVs) that only appears under its final name on commit();
 * abort() removes the temp file.
 */
export class AtomicTextWriter {
  private readonly tmp: string;
  private readonly stream: ReturnType<typeof createWriteStream>;
  private failure: Error | undefined;

  constructor(readonly target: string) {
    mkdirSync(dirname(target), { recursive: true });
    this.tmp = tempPathFor(target);
    this.stream = createWriteStream(this.tmp, { encoding: 'utf8' });
    this.stream.on('error', (e) => (this.failure = e));
  }

  /** Resolves once the chunk is buffered or drained, so huge outputs do not pile up in memory. */
  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(text)) await new Promise<void>((r) => this.stream.once('drain', () => r()));
  }

  async commit(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (this.failure) {
      rmSync(this.tmp, { force: true });
      throw this.failure;
    }
    renameSync(this.tmp, this.target);
  }

  abort(): void {
    this.stream.destroy();
    rmSync(this.tmp, { force: true });
  }
}

/** Runs `body` with an AtomicTextWriter; commits on success, removes the temp file on any error. */
export async function withAtomicText<T>(target: string, body: (w: AtomicTextWriter) => Promise<T>): Promise<T> {
  const w = new AtomicTextWriter(target);
  try {
    const result = await body(w);
    await w.commit();
    return result;
  } catch (err) {
    w.abort();
    throw err;
  }
}
