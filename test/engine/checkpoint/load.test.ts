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

  // A damaged safetensors file used to fall through to "not a checkpoint": each says what is wrong.
  describe('a damaged safetensors file names what is wrong', () => {
    const t = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    const craft = (header: unknown, data = 8, lenDelta = 0): Uint8Array => {
      const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length + lenDelta));
      return Buffer.concat([len, json, Buffer.alloc(data)]);
    };
    it.each([
      ['header length beyond the file', craft({ a: t }, 8, 100), /^w\.safetensors: header length: header length \d+ runs past the end of the \d+-byte file \(truncated\?\)$/],
      ['invalid JSON', craft('{"a": {"dtype": "F32",', 8), /^w\.safetensors: header: not valid UTF-8 JSON/],
      ['missing dtype', craft({ a: { shape: [2], data_offsets: [0, 8] } }), /^w\.safetensors: tensor "a": missing "dtype"; expected an object with dtype, shape and data_offsets$/],
      ['missing shape and data_offsets', craft({ a: { dtype: 'F32' } }), /^w\.safetensors: tensor "a": missing "shape", "data_offsets"/],
      ['overlapping offsets', craft({ a: t, b: { ...t, data_offsets: [4, 12] } }, 12), /^w\.safetensors: tensor "b": data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]$/],
      ['offsets past the end', craft({ a: { ...t, data_offsets: [0, 16], shape: [4] } }), /^w\.safetensors: tensor "a": data_offsets \[0, 16\] run past the 8-byte data section \(truncated file\?\)$/],
      ['unknown dtype', craft({ a: { ...t, dtype: 'F24' } }), /^w\.safetensors: tensor "a": unknown dtype "F24"; expected one of F32/],
      ['shape x itemsize != offsets span', craft({ a: { ...t, shape: [3] } }), /^w\.safetensors: tensor "a": F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8$/],
      ['a shape too large to exist', craft({ a: { ...t, shape: [2 ** 40, 2 ** 40] } }), /^w\.safetensors: tensor "a": F32 shape \[\d+, \d+\] is too large to be stored/],
    ])('%s', (_, bytes, message) => {
      expect(() => parseCheckpoint(bytes, 'w.safetensors')).toThrow(message);
      // The content alone is enough (the name does not matter) once byte 8 is the header's "{".
      expect(() => parseCheckpoint(bytes, 'w.bin')).toThrow(message.source.startsWith('^w\\.safetensors') ? new RegExp(message.source.replace('^w\\.safetensors', '^w\\.bin')) : message);
    });
    it('too short or an absurd length: the .safetensors name gets the safetensors diagnosis', () => {
      expect(() => parseCheckpoint(Uint8Array.from([1, 2, 3]), 'w.safetensors')).toThrow(/^w\.safetensors: header length: file is 3 bytes; a safetensors file starts with an 8-byte header length$/);
      const absurd = craft({ a: t });
      absurd[6] = 1; // 2^48 + n
      expect(() => parseCheckpoint(absurd, 'w.safetensors')).toThrow(/^w\.safetensors: header length: header length \d+ exceeds the 100000000-byte limit/);
      const pickleLike = craft({ a: t });
      pickleLike[0] = 0x80; // a header length of 128 + ..., byte 0 like a pickle's PROTO, byte 8 not "{"
      pickleLike[8] = 0x20;
      expect(() => parseCheckpoint(pickleLike, 'w.safetensors')).toThrow(/^w\.safetensors: header length: header length \d+ runs past the end/);
    });
  });
});
