// The synthetic generator's output for the training recipe's seed is benchmark data: the reference
// run of the real CenterMask2 and the shipped demo model were trained on exactly these 40 images.
// A change to the generator must keep this output (put new behaviour behind a version option).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSynthDataset } from '../../../../pipeline/data/synth/dataset';

const dir = mkdtempSync(join(tmpdir(), 'cellgpu-synth9137-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cellseg synth --seed 9137 --train 40 --test 0 (the training benchmark data)', () => {
  it('writes the same train.csv, byte for byte', () => {
    const s = writeSynthDataset(join(dir, 'data'), { seed: 9137, trainImages: 40, testImages: 0, width: 704, height: 520 }, true);
    expect(s.train.length).toBe(40);
    expect(s.train.reduce((n, t) => n + t.instances, 0)).toBe(6156);
    const sha = createHash('sha256').update(readFileSync(join(dir, 'data', 'train.csv'))).digest('hex');
    expect(sha).toBe('8127427c2aa4acba07168103a08d3e147d9e8f0b5e0187a452a0af92cde77d4e');
  }, 120_000);
});
