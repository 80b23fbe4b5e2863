// Training checkpoints count only once they are on disk and read back: last_checkpoint moves after
// both safetensors files were written durably and re-read (header, offsets, size); a failing disk
// leaves last_checkpoint on the previous, intact checkpoint; a killed save's temporaries go away.
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { WriteError } from '../../../runtime/errors';
import { nodeDurableFs, setDurableFs, type DurableFs } from '../../../runtime/durable-write';
import { readSafetensors } from '../../../engine/checkpoint/safetensors';
import { SGD } from '../../../engine/optim/sgd';
import { lastCheckpoint, saveCheckpoint } from '../../../pipeline/engine/checkpoint';
import { StandInModel } from './standin';
import { makeTempDir } from '../tmp';

const { dir: root, cleanup } = makeTempDir('ckpt');
beforeAll(async () => {
  await init();
});
afterAll(cleanup);

function setup(tag: string) {
  const dir = join(root, tag);
  const model = new StandInModel();
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const save = (iteration: number) =>
    saveCheckpoint({ dir, name: `model_${String(iteration).padStart(7, '0')}`, model, optimizer, state: { iteration, seed: 1, schedulerIter: iteration } });
  return { dir, save };
}

/** With `fs` swapped in for the durable writer during `fn`. */
async function withFs<T>(fs: Partial<DurableFs>, fn: () => Promise<T>): Promise<T> {
  const restore = setDurableFs(fs);
  try {
    return await fn();
  } finally {
    restore();
  }
}

async function expectPreviousIntact(dir: string): Promise<void> {
  expect(readFileSync(join(dir, 'last_checkpoint'), 'utf8')).toBe('model_0000001.safetensors');
  expect(await lastCheckpoint(dir)).toBe(join(dir, 'model_0000001.safetensors'));
  expect((await readSafetensors(join(dir, 'model_0000001.safetensors'))).metadata.iteration).toBe('1');
  expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
}

describe('training checkpoints', () => {
  it('a save removes the temporaries a killed save left, and nothing else', async () => {
    const { dir, save } = setup('stale');
    await save(1);
    const stale = ['.model_0000003.safetensors.999999.deadbeef.tmp', '.model_0000003.state.safetensors.999999.0badf00d.tmp', '.last_checkpoint.999999.12345678.tmp'];
    const other = '.metrics.json.999999.12345678.tmp';
    for (const f of [...stale, other]) writeFileSync(join(dir, f), 'partial');
    await save(3);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([other]);
    expect(readFileSync(join(dir, 'last_checkpoint'), 'utf8')).toBe('model_0000003.safetensors');
  });

  it('ENOSPC while writing the weights: WriteError, last_checkpoint unchanged', async () => {
    const { dir, save } = setup('enospc');
    await save(1);
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const err = await withFs({ write: async () => { throw enospc; } }, () => save(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as Error).message).toBe(`${join(dir, 'model_0000003.state.safetensors')}: could not write: no space left on device (ENOSPC) (while writing)`);
    await expectPreviousIntact(dir);
  });

  it('a disk that stores other bytes than it was given: caught by the re-read, last_checkpoint unchanged', async () => {
    const { dir, save } = setup('corrupt');
    await save(1);
    let calls = 0;
    const corrupting: Partial<DurableFs> = {
      write: async (fd, b, o, l, p) => {
        const copy = Uint8Array.from(b.subarray(o, o + l));
        if (p === 8 && ++calls === 2) copy[3] ^= 0x20; // the weights file's header (the second file)
        return nodeDurableFs.write(fd, copy, 0, l, p);
      },
    };
    const err = await withFs(corrupting, () => save(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as Error).message).toMatch(/model_0000003\.safetensors: could not write: the written file does not read back as written: (header|tensor "[^"]*"): /);
    await expectPreviousIntact(dir);
  });

  it('a file that loses its tail after the rename: the re-read before last_checkpoint refuses it', async () => {
    const { dir, save } = setup('lost');
    await save(1);
    const losing: Partial<DurableFs> = {
      renameSync: (a, b) => {
        nodeDurableFs.renameSync(a, b);
        if (b.endsWith('model_0000003.safetensors')) truncateSync(b, 100);
      },
    };
    const err = await withFs(losing, () => save(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as Error).message).toMatch(
      /model_0000003\.safetensors: could not write: it does not read back as a complete checkpoint \(header length: header length \d+ runs past the end of the 100-byte file \(truncated\?\)\); last_checkpoint still names the previous one$/,
    );
    await expectPreviousIntact(dir);
  });
});
