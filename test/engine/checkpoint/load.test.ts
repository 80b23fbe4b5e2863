import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostTensor } from '../../../engine/checkpoint/host-tensor';
import { loadCheckpoint, parseCheckpoint } from '../../../engine/checkpoint/load';
import { writeSafetensors } from '../../../engine/checkpoint/safetensors';
import { expectFixtureTensors, fixtureBytes, fixturePath } from './fixtures';

describe('loadCheckpoint', () => {
  it.each([
    ['zip.pth', 'torch-zip'],
    ['zip_proto4.pth', 'torch-zip'],
    ['legacy.pth', 'torch-legacy'],
    ['detectron2_zoo_p2.pkl', 'pickle'],
    ['detectron2_zoo_p5.pkl', 'pickle'],
  ])('%s is recognised by content as %s', async (name, format) => {
    const ckpt = await loadCheckpoint(fixturePath(name));
    expect(ckpt.format).toBe(format);
    expectFixtureTensors(name, ckpt.tensors);
  });

  it('does not trust the extension', () => {
    // A legacy torch file named .pkl and a pickle named .pth still load as what they are.
    expect(parseCheckpoint(fixtureBytes('legacy.pth'), 'weights.pkl').format).toBe('torch-legacy');
    expect(parseCheckpoint(fixtureBytes('detectron2_zoo_p2.pkl'), 'weights.pth').format).toBe('pickle');
  });

  it('reads safetensors, keeping its metadata', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ck-'));
    const file = path.join(dir, 'w.bin');
    await writeSafetensors(file, { a: hostTensor('F32', [2], Float32Array.from([1, 2])) }, { k: 'v' });
    const ckpt = await loadCheckpoint(file);
    expect(ckpt.format).toBe('safetensors');
    expect(ckpt.metadata).toEqual({ k: 'v' });
    expect(Array.from(ckpt.tensors.get('a')!.data as Float32Array)).toEqual([1, 2]);
  });

  it('takes a checkpoint without a "model" wrapper as the state dict itself', () => {
    const ckpt = parseCheckpoint(fixtureBytes('zip_proto4.pth'), 'bare.pth'); // torch.save(state_dict)
    expect(ckpt.ignored).toEqual([]);
    expectFixtureTensors('zip_proto4.pth', ckpt.tensors);
  });

  it('rejects what is not a checkpoint, and unreadable paths', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ck-'));
    const file = path.join(dir, 'notes.txt');
    writeFileSync(file, 'hello, world');
    await expect(loadCheckpoint(file)).rejects.toThrow(`${file}: offset 0: not a checkpoint: expected a PyTorch .pth (zip or legacy), a pickled .pkl or a .safetensors file`);
    await expect(loadCheckpoint(path.join(dir, 'missing.pth'))).rejects.toThrow(/cannot read .*missing\.pth/);
  });
});
