// pipeline/io/atomic.ts keeps its names and signatures but is now the durable writer: a failing
// disk gives one WriteError line, the previous output survives and no temporary file is left.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WriteError } from '../../../runtime/errors';
import { nodeDurableFs, setDurableFs } from '../../../runtime/durable-write';
import { AtomicTextWriter, withAtomicText, writeFileAtomic, writeJsonAtomic } from '../../../pipeline/io/atomic';
import { makeTempDir } from '../tmp';

const { dir: root, cleanup } = makeTempDir('atomic');
afterAll(cleanup);
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

describe('pipeline/io/atomic', () => {
  it('writes files, JSON and streamed text atomically', async () => {
    const dir = join(root, 'ok');
    writeFileAtomic(join(dir, 'a.txt'), 'hello');
    writeJsonAtomic(join(dir, 'b.json'), { x: [1, 2] });
    await withAtomicText(join(dir, 'c.csv'), async (w) => {
      expect(w).toBeInstanceOf(AtomicTextWriter);
      await w.write('id,v\n');
      await w.write('1,2\n');
    });
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('hello');
    expect(JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8'))).toEqual({ x: [1, 2] });
    expect(readFileSync(join(dir, 'c.csv'), 'utf8')).toBe('id,v\n1,2\n');
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.json', 'c.csv']);
  });

  it('a full disk fails every writer with PATH: could not write: REASON and keeps the old file', async () => {
    const dir = join(root, 'full');
    const targets = ['a.txt', 'b.json', 'c.csv'].map((f) => join(dir, f));
    for (const t of targets) writeFileAtomic(t, 'OLD');
    // Writes accept 3 bytes, then the disk is full.
    let left = 3;
    const restore = setDurableFs({
      writeSync: (fd, b, o, l, p) => {
        if (left === 0) throw enospc();
        const k = Math.min(l, left);
        left -= k;
        return nodeDurableFs.writeSync(fd, b, o, k, p);
      },
      write: async (fd, b, o, l, p) => {
        if (left === 0) return 0;
        const k = Math.min(l, left);
        left -= k;
        return nodeDurableFs.write(fd, b, o, k, p);
      },
    });
    try {
      expect(() => writeFileAtomic(targets[0]!, 'new contents')).toThrow(`${targets[0]}: could not write: no space left on device (ENOSPC) (while writing)`);
      left = 3;
      expect(() => writeJsonAtomic(targets[1]!, { big: 'x'.repeat(100) })).toThrow(WriteError);
      left = 3;
      await expect(withAtomicText(targets[2]!, async (w) => w.write('a,b\n1,2\n'))).rejects.toThrow(
        `${targets[2]}: could not write: the file system accepted 0 bytes after 3 of 8 (disk full?)`,
      );
    } finally {
      restore();
    }
    for (const t of targets) expect(readFileSync(t, 'utf8')).toBe('OLD');
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.json', 'c.csv']);
  });
});
