// The durable writer under injected failures: partial writes are continued, a write of 0 bytes
// or ENOSPC/EROFS/EACCES/EIO becomes one WriteError `PATH: could not write: REASON`, the previous
// file survives and no temporary file is left behind.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WriteError } from '../../runtime/errors';
import {
  asWriteError,
  DurableTextWriter,
  nodeDurableFs,
  removeStaleTemps,
  setDurableFs,
  withDurableText,
  writeFileDurable,
  writeFileDurableAsync,
  writeFilesDurable,
  type DurableFs,
} from '../../runtime/durable-write';

const root = mkdtempSync(join(tmpdir(), 'cellgpu-durable-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh directory holding `out.bin` with the old contents. */
function fresh(): { dir: string; file: string } {
  const dir = join(root, `d${n++}`);
  const file = join(dir, 'out.bin');
  writeFileDurable(file, 'OLD CONTENTS');
  return { dir, file };
}

const errno = (code: string, syscall = 'write') => Object.assign(new Error(`${code}: simulated, ${syscall}`), { code, syscall });
const bytes = (len: number) => Uint8Array.from({ length: len }, (_, i) => (i * 31 + 7) & 255);

/** The real fs with the write calls replaced: `w(asked, writtenSoFar)` returns the count to report
 *  (the real write of that many bytes happens) or throws. */
function writesLike(w: (asked: number, sofar: number) => number): Partial<DurableFs> {
  let sofar = 0;
  const count = (len: number) => {
    const k = w(len, sofar);
    sofar += k;
    return k;
  };
  return {
    writeSync: (fd, b, o, l, p) => nodeDurableFs.writeSync(fd, b, o, Math.min(l, count(l)), p),
    write: async (fd, b, o, l, p) => {
      const k = count(l);
      return k === 0 ? 0 : nodeDurableFs.write(fd, b, o, Math.min(l, k), p);
    },
  };
}

function writeError(fn: () => unknown): WriteError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WriteError);
    return err as WriteError;
  }
  throw new Error('expected a WriteError');
}
async function writeErrorAsync(fn: () => Promise<unknown>): Promise<WriteError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WriteError);
    return err as WriteError;
  }
  throw new Error('expected a WriteError');
}

/** The old file is intact and nothing else is in the directory. */
function expectUntouched(dir: string, file: string): void {
  expect(readFileSync(file, 'utf8')).toBe('OLD CONTENTS');
  expect(readdirSync(dir)).toEqual(['out.bin']);
}

describe('durable writes', () => {
  it('replaces the target (sync, async, streamed) and leaves no temporary file', async () => {
    const { dir, file } = fresh();
    writeFileDurable(file, bytes(1000));
    expect(new Uint8Array(readFileSync(file))).toEqual(bytes(1000));
    await writeFileDurableAsync(file, [bytes(10), 'é', bytes(3)]);
    expect(readFileSync(file).byteLength).toBe(15);
    await withDurableText(file, async (w) => {
      for (let i = 0; i < 30_000; i++) await w.write(`line ${i}, with some padding to pass the flush size\n`);
    });
    expect(readFileSync(file, 'utf8').split('\n')[29_999]).toBe('line 29999, with some padding to pass the flush size');
    expect(readdirSync(dir)).toEqual(['out.bin']);
    writeFileDurable(join(dir, 'new', 'deep', 'x.json'), '{}'); // creates the directory
    expect(readFileSync(join(dir, 'new', 'deep', 'x.json'), 'utf8')).toBe('{}');
  });

  it('continues partial writes until every byte is written', async () => {
    const { file } = fresh();
    const data = bytes(100_003);
    writeFileDurable(file, data, { fs: writesLike((asked) => Math.min(asked, 4099)) });
    expect(new Uint8Array(readFileSync(file))).toEqual(data);
    await writeFileDurableAsync(file, [data.subarray(0, 50_000), data.subarray(50_000)], { fs: writesLike((asked) => Math.min(asked, 777)) });
    expect(new Uint8Array(readFileSync(file))).toEqual(data);
    const text = 'x'.repeat(3_000_000);
    await withDurableText(file, async (w) => w.write(text), { fs: writesLike((asked) => Math.min(asked, 65_536)) });
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('a write that accepts 0 bytes is a full disk: the 64 KiB-of-200 MB case fails loudly', async () => {
    const { dir, file } = fresh();
    const fullAfter64K = () => writesLike((asked, sofar) => Math.max(0, Math.min(asked, 65_536 - sofar)));
    const e1 = writeError(() => writeFileDurable(file, bytes(300_000), { fs: fullAfter64K() }));
    expect(e1.message).toBe(`${file}: could not write: the file system accepted 0 bytes after 65536 of 300000 (disk full?)`);
    expectUntouched(dir, file);
    const e2 = await writeErrorAsync(() => writeFileDurableAsync(file, [bytes(100_000), bytes(200_000)], { fs: fullAfter64K() }));
    expect(e2.message).toBe(`${file}: could not write: the file system accepted 0 bytes after 65536 of 300000 (disk full?)`);
    expectUntouched(dir, file);
    const e3 = await writeErrorAsync(() => withDurableText(file, async (w) => {
      for (let i = 0; i < 100; i++) await w.write('y'.repeat(100_000));
    }, { fs: fullAfter64K() }));
    expect(e3.message).toMatch(/could not write: the file system accepted 0 bytes after 65536 of \d+ \(disk full\?\)$/);
    expectUntouched(dir, file);
  });

  it('a write count that is not a count is an error, not a success', () => {
    const { dir, file } = fresh();
    const tooMany: Partial<DurableFs> = { writeSync: (fd, b, o, l, p) => nodeDurableFs.writeSync(fd, b, o, l, p) + 5 };
    const e = writeError(() => writeFileDurable(file, bytes(10), { fs: tooMany }));
    expect(e.message).toBe(`${file}: could not write: write returned 15 for a request of 10 bytes`);
    expectUntouched(dir, file);
  });

  it('a file system that reports success but stores less is caught by the size check', () => {
    const { dir, file } = fresh();
    const liar: Partial<DurableFs> = { writeSync: (fd, b, o, l, p) => (nodeDurableFs.writeSync(fd, b, o, Math.min(l, 5), p), l) };
    const e = writeError(() => writeFileDurable(file, bytes(100), { fs: liar }));
    expect(e.message).toBe(`${file}: could not write: the temporary file holds 5 bytes after writing 100`);
    expectUntouched(dir, file);
  });

  it.each([
    ['ENOSPC', 'no space left on device (ENOSPC) (while writing)'],
    ['EDQUOT', 'disk quota exceeded (EDQUOT) (while writing)'],
    ['EIO', 'input/output error (EIO) (while writing)'],
  ])('%s from write: one line, old file intact, no temp', async (code, reason) => {
    const { dir, file } = fresh();
    const failing = writesLike((asked, sofar) => {
      if (sofar >= 1000) throw errno(code);
      return Math.min(asked, 1000);
    });
    const e = writeError(() => writeFileDurable(file, bytes(5000), { fs: failing }));
    expect(e.message).toBe(`${file}: could not write: ${reason}`);
    expect(e.message).not.toContain('\n');
    expectUntouched(dir, file);
    const failAsync = writesLike(() => {
      throw errno(code);
    });
    const e2 = await writeErrorAsync(() => writeFileDurableAsync(file, bytes(5000), { fs: failAsync }));
    expect(e2.message).toBe(`${file}: could not write: ${reason}`);
    expectUntouched(dir, file);
  });

  it.each([
    ['EROFS', 'read-only file system (EROFS)'],
    ['EACCES', 'permission denied (EACCES)'],
  ])('%s creating the temporary file names the step', (code, words) => {
    const { dir, file } = fresh();
    const e = writeError(() => writeFileDurable(file, 'new', { fs: { openSync: () => { throw errno(code, 'open'); } } }));
    expect(e.message).toBe(`${file}: could not write: ${words} (while creating a temporary file in its directory)`);
    expectUntouched(dir, file);
    expect(() => new DurableTextWriter(file, { fs: { openSync: () => { throw errno(code, 'open'); } } })).toThrow(WriteError);
    expectUntouched(dir, file);
  });

  it('a failed rename or fsync keeps the old file and removes the temp', async () => {
    const { dir, file } = fresh();
    const renameFails: Partial<DurableFs> = { renameSync: () => { throw errno('EXDEV', 'rename'); } };
    const e = writeError(() => writeFileDurable(file, 'new', { fs: renameFails }));
    expect(e.message).toBe(`${file}: could not write: the temporary file and the target are on different file systems (EXDEV) (while renaming the temporary file into place)`);
    expectUntouched(dir, file);
    await writeErrorAsync(() => writeFileDurableAsync(file, bytes(10), { fs: renameFails }));
    expectUntouched(dir, file);
    await writeErrorAsync(() => withDurableText(file, async (w) => w.write('new'), { fs: renameFails }));
    expectUntouched(dir, file);
    const fsyncFails: Partial<DurableFs> = { fsyncSync: () => { throw errno('EIO', 'fsync'); }, fsync: async () => { throw errno('EIO', 'fsync'); } };
    const e2 = writeError(() => writeFileDurable(file, 'new', { fs: fsyncFails }));
    expect(e2.message).toBe(`${file}: could not write: input/output error (EIO) (while flushing it to disk (fsync))`);
    expectUntouched(dir, file);
    await writeErrorAsync(() => writeFileDurableAsync(file, bytes(10), { fs: fsyncFails }));
    expectUntouched(dir, file);
  });

  it('fsyncs the file before the rename and the directory after it', () => {
    const { file } = fresh();
    const calls: string[] = [];
    const spy: Partial<DurableFs> = {
      fsyncSync: (fd) => (calls.push('fsync'), nodeDurableFs.fsyncSync(fd)),
      renameSync: (a, b) => (calls.push('rename'), nodeDurableFs.renameSync(a, b)),
      openSync: (p, f, m) => (calls.push(`open ${f}`), nodeDurableFs.openSync(p, f, m)),
    };
    writeFileDurable(file, 'new', { fs: spy });
    expect(calls).toEqual(['open wx', 'fsync', 'rename', 'open r', 'fsync']);
  });

  it('an error thrown by the streaming body passes through unchanged and removes the temp', async () => {
    const { dir, file } = fresh();
    await expect(withDurableText(file, async (w) => {
      await w.write('partial');
      throw new RangeError('bad row 7');
    })).rejects.toThrow(/^bad row 7$/);
    expectUntouched(dir, file);
    const w = new DurableTextWriter(file);
    await w.write('abandoned');
    w.abort();
    expectUntouched(dir, file);
  });

  it('setDurableFs reaches writers that take no options, and restores', () => {
    const { dir, file } = fresh();
    const restore = setDurableFs({ openSync: () => { throw errno('EROFS', 'open'); } });
    try {
      expect(() => writeFileDurable(file, 'new')).toThrow(/could not write: read-only file system \(EROFS\)/);
    } finally {
      restore();
    }
    expectUntouched(dir, file);
    writeFileDurable(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
  });

  it('refuses /proc and /sys before any mkdir (a recursive mkdir there never returns)', () => {
    expect(() => writeFileDurable('/proc/self/cellgpu/x/y.json', 'a')).toThrow(/\/proc\/self\/cellgpu\/x\/y\.json: could not write: \/proc is a pseudo file system/);
    expect(() => writeFileDurable('/sys/cellgpu/y.json', 'a')).toThrow(WriteError);
  });

  it('removeStaleTemps deletes the leftovers of a killed write, and nothing else', () => {
    const { dir } = fresh();
    const names = [
      '.model_0000099.safetensors.4242.0badf00d.tmp',
      '.last_checkpoint.4242.deadbeef.tmp',
      '.out.bin.4242.12345678.tmp',
      `.out.bin.${process.pid}.abcdef01.tmp`, // this process's own write in progress: kept
      '.out.bin.notapid.12345678.tmp',
      'model_0000099.safetensors',
    ];
    for (const f of names) writeFileSync(join(dir, f), 'x');
    expect(removeStaleTemps(dir, 'out.bin')).toEqual(['.out.bin.4242.12345678.tmp']);
    expect(removeStaleTemps(dir, (b) => b.startsWith('model_') || b === 'last_checkpoint').sort()).toEqual([
      '.last_checkpoint.4242.deadbeef.tmp',
      '.model_0000099.safetensors.4242.0badf00d.tmp',
    ]);
    expect(readdirSync(dir).sort()).toEqual([`.out.bin.${process.pid}.abcdef01.tmp`, '.out.bin.notapid.12345678.tmp', 'model_0000099.safetensors', 'out.bin']);
    expect(removeStaleTemps(join(dir, 'missing'), 'x')).toEqual([]);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });

  it('asWriteError turns file-system errors of other writers into one line, and leaves other errors alone', async () => {
    const { dir } = fresh();
    const { appendFileSync } = await import('node:fs');
    let err: unknown;
    try {
      appendFileSync(join(dir, 'out.bin', 'metrics.json'), 'x'); // out.bin is a file: ENOTDIR
    } catch (e) {
      err = asWriteError(e, join(dir, 'out.bin', 'metrics.json'));
    }
    expect(err).toBeInstanceOf(WriteError);
    expect((err as Error).message).toBe(`${join(dir, 'out.bin', 'metrics.json')}: could not write: a component of the path is not a directory (ENOTDIR)`);
    const bug = new TypeError('x is undefined');
    expect(asWriteError(bug, 'f')).toBe(bug);
  });
});

describe('writeFilesDurable: several outputs together or not at all', () => {
  it('all files appear; a failure in the third leaves all three previous files and no temp files', () => {
    const { dir } = fresh();
    const files = ['a.json', 'b.json', 'c.csv'].map((f) => join(dir, f));
    writeFilesDurable(files.map((path, i) => ({ path, data: `v1 ${i}` })));
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(['v1 0', 'v1 1', 'v1 2']);
    let opened = 0;
    const fs: Partial<DurableFs> = {
      openSync: (p, f, m) => {
        const fd = nodeDurableFs.openSync(p, f, m);
        if (p.endsWith('.tmp') && ++opened === 3) doomed = fd;
        return fd;
      },
      writeSync: (fd, b, o, l, p) => {
        if (fd === doomed) throw errno('ENOSPC', 'write');
        return nodeDurableFs.writeSync(fd, b, o, l, p);
      },
    };
    let doomed = -1;
    const e = writeError(() => writeFilesDurable(files.map((path, i) => ({ path, data: `v2 ${i}` })), { fs }));
    expect(e.message).toBe(`${files[2]}: could not write: no space left on device (ENOSPC) (while writing)`);
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(['v1 0', 'v1 1', 'v1 2']);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
