import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../../engine/checkpoint/load';
import { readSafetensors } from '../../../engine/checkpoint/safetensors';
import { convertWeights } from '../../../pipeline/zoo/convert-weights';
import { UserError, WriteError } from '../../../runtime/errors';
import { nodeDurableFs, setDurableFs } from '../../../runtime/durable-write';
import { expectFixtureTensors, fixturePath } from '../../engine/checkpoint/fixtures';

describe('cellseg convert-weights', () => {
  it.each(['zip.pth', 'legacy.pth', 'detectron2_zoo_p2.pkl'])('%s -> safetensors keeps every tensor bit for bit', async (name) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-'));
    const out = path.join(dir, 'out.safetensors');
    const summary = await convertWeights(fixturePath(name), out);
    expect(readdirSync(dir)).toEqual(['out.safetensors']); // no temporary file left behind
    const back = await readSafetensors(out);
    expect(back.metadata).toEqual({ converted_from: name, source_format: summary.format });
    expect(back.tensors.size).toBe(summary.tensors);
    // safetensors stores by dtype then name; put them back in the checkpoint's order to compare.
    const original = (await loadCheckpoint(fixturePath(name))).tensors;
    expectFixtureTensors(name, new Map([...original.keys()].map((k) => [k, back.tensors.get(k)!])));
  });

  it('refuses to overwrite its input or to write a non-.safetensors name', async () => {
    await expect(convertWeights(fixturePath('zip.pth'), fixturePath('zip.pth'))).rejects.toThrow(/would overwrite the input/);
    await expect(convertWeights(fixturePath('zip.pth'), '/tmp/x.pth')).rejects.toThrow(/must end in \.safetensors/);
  });

  it('fails with the global named for a hostile checkpoint, writing nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-'));
    await expect(convertWeights(fixturePath('forbidden_global.pth'), path.join(dir, 'o.safetensors'))).rejects.toThrow(/refusing to load global "posix\.system"/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('on a full disk fails with one line (a UserError the CLI prints without a stack) and keeps the old output', async () => {
    // It once reported success and left the first 64 KiB of the file.
    const dir = mkdtempSync(path.join(tmpdir(), 'cw-'));
    const out = path.join(dir, 'out.safetensors');
    writeFileSync(out, 'previous output');
    let room = 1024;
    const restore = setDurableFs({
      write: async (fd, b, o, l, p) => {
        const k = Math.min(l, room);
        room -= k;
        return k === 0 ? 0 : nodeDurableFs.write(fd, b, o, k, p);
      },
    });
    let err: unknown;
    try {
      err = await convertWeights(fixturePath('zip.pth'), out).catch((e: unknown) => e);
    } finally {
      restore();
    }
    expect(err).toBeInstanceOf(WriteError);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: could not write: the file system accepted 0 bytes after 1024 of \\d+ \\(disk full\\?\\)$`));
    expect(readFileSync(out, 'utf8')).toBe('previous output');
    expect(readdirSync(dir)).toEqual(['out.safetensors']);
  });
});
