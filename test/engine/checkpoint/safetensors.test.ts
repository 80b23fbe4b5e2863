import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../runtime/errors';
import { hostTensor, type HostTensor } from '../../../engine/checkpoint/host-tensor';
import { parseSafetensors, readSafetensors, serializeSafetensors, verifySafetensorsFile, writeSafetensors } from '../../../engine/checkpoint/safetensors';
import { fixtureDir, fixtureModels, fixtureRoot } from '../../models/fixture-util';
import { WriteError } from '../../../runtime/errors';
import { nodeDurableFs, setDurableFs } from '../../../runtime/durable-write';

function sample(): Map<string, HostTensor> {
  return new Map<string, HostTensor>([
    ['w.f32', hostTensor('F32', [2, 3], Float32Array.from([1, -2, 3.5, 0, 1e-30, -7]))],
    ['w.f16', hostTensor('F16', [3], Uint16Array.from([0x3c00, 0xc000, 0x7bff]))],
    ['w.f64', hostTensor('F64', [1], Float64Array.from([1 / 3]))],
    ['w.i8', hostTensor('I8', [3], Int8Array.from([-128, 0, 127]))],
    ['w.u8', hostTensor('U8', [1, 3], Uint8Array.from([0, 1, 255]))],
    ['w.i32', hostTensor('I32', [2], Int32Array.from([-(2 ** 31), 2 ** 31 - 1]))],
    ['w.i64', hostTensor('I64', [2], BigInt64Array.from([-(2n ** 63n), 2n ** 53n + 1n]))],
    ['w.bool', hostTensor('BOOL', [2], Uint8Array.from([1, 0]))],
    ['scalar', hostTensor('F32', [], Float32Array.from([42]))],
    ['empty', hostTensor('F32', [0, 4], new Float32Array(0))],
  ]);
}

const encode = (t: Map<string, HostTensor>, meta?: Record<string, string>) => Buffer.concat(serializeSafetensors(t, meta));

/** A file with a hand-written header and data section. */
function craft(header: unknown, data: Uint8Array | number = 0): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, typeof data === 'number' ? Buffer.alloc(data) : data]);
}

function expectInputError(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an InputError');
}

describe('safetensors', () => {
  it('round-trips every dtype, shape and the metadata', () => {
    const tensors = sample();
    const parsed = parseSafetensors(encode(tensors, { note: 'hi', n: '3' }));
    expect(parsed.metadata).toEqual({ note: 'hi', n: '3' });
    expect([...parsed.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const r = parsed.tensors.get(name)!;
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      expect(Array.from(r.data as ArrayLike<unknown>)).toEqual(Array.from(t.data as ArrayLike<unknown>));
    }
  });

  it('writes like the reference: padded header, largest alignment first then by name, aligned data', () => {
    const bytes = encode(sample(), { a: 'b' });
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
    const names = Object.keys(header);
    expect(names[0]).toBe('__metadata__');
    expect(names.slice(1)).toEqual(['w.i64', 'w.f64', 'empty', 'scalar', 'w.f32', 'w.i32', 'w.f16', 'w.i8', 'w.u8', 'w.bool']);
    const size: Record<string, number> = { I64: 8, F64: 8, F32: 4, I32: 4, F16: 2, I8: 1, U8: 1, BOOL: 1 };
    for (const name of names.slice(1)) {
      const { dtype, data_offsets: [b] } = header[name];
      expect((8 + n + b) % size[dtype]!).toBe(0);
    }
  });

  it('writes atomically: the target appears complete and no temporary file is left', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
    const file = path.join(dir, 'out.safetensors');
    writeFileSync(file, 'old contents');
    await writeSafetensors(file, sample());
    expect(readdirSync(dir)).toEqual(['out.safetensors']);
    expect((await readSafetensors(file)).tensors.get('w.i64')!.data).toEqual(sample().get('w.i64')!.data);
  });

  describe('verified writes', () => {
    const big = () => new Map<string, HostTensor>([['w', hostTensor('F32', [100_000], new Float32Array(100_000).fill(1.5))]]);
    const dirWithOld = () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
      const file = path.join(dir, 'out.safetensors');
      writeFileSync(file, 'old contents');
      return { dir, file };
    };
    const expectOld = (dir: string, file: string) => {
      expect(readFileSync(file, 'utf8')).toBe('old contents');
      expect(readdirSync(dir)).toEqual(['out.safetensors']);
    };

    it('a disk that fills after 64 KiB fails the write instead of leaving 64 KiB of the file', async () => {
      // convert-weights on a full disk once reported success and left 64 KiB of a 200 MB file.
      const { dir, file } = dirWithOld();
      let room = 65_536;
      const restore = setDurableFs({
        write: async (fd, b, o, l, p) => {
          const k = Math.min(l, room);
          room -= k;
          return k === 0 ? 0 : nodeDurableFs.write(fd, b, o, k, p);
        },
      });
      try {
        const err = await writeSafetensors(file, big()).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteError);
        expect((err as Error).message).toBe(`${file}: could not write: the file system accepted 0 bytes after 65536 of 400072 (disk full?)`);
      } finally {
        restore();
      }
      expectOld(dir, file);
    });

    it('ENOSPC from the disk: one WriteError line, old file intact, no temporary file', async () => {
      const { dir, file } = dirWithOld();
      const restore = setDurableFs({ write: async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); } });
      try {
        await expect(writeSafetensors(file, big())).rejects.toThrow(`${file}: could not write: no space left on device (ENOSPC) (while writing)`);
      } finally {
        restore();
      }
      expectOld(dir, file);
    });

    it('the written file is re-read before it replaces the target: a corrupted header is caught', async () => {
      const { dir, file } = dirWithOld();
      // A disk that reports success but stores a different byte in the header's first tensor name.
      const restore = setDurableFs({
        write: async (fd, b, o, l, p) => {
          const copy = Uint8Array.from(b.subarray(o, o + l));
          if (p === 8) copy[2] ^= 0x01; // inside the JSON header, after '{"'
          return nodeDurableFs.write(fd, copy, 0, l, p);
        },
      });
      try {
        await expect(writeSafetensors(file, big())).rejects.toThrow(
          `${file}: could not write: the written file does not read back as written: header: differs from the header that was written`,
        );
      } finally {
        restore();
      }
      expectOld(dir, file);
    });

    it('verifySafetensorsFile re-reads header, offsets and size from disk', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'st-'));
      const file = path.join(dir, 'ok.safetensors');
      await writeSafetensors(file, sample());
      verifySafetensorsFile(file);
      const bytes = readFileSync(file);
      writeFileSync(file, bytes.subarray(0, bytes.length - 1));
      expect(() => verifySafetensorsFile(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: tensor ".*": data_offsets \\[\\d+, \\d+\\] run past the \\d+-byte data section`));
      writeFileSync(file, bytes.subarray(0, 20));
      expect(() => verifySafetensorsFile(file)).toThrow(/header length: header length \d+ runs past the end of the 20-byte file/);
      writeFileSync(file, bytes.subarray(0, 3));
      expect(() => verifySafetensorsFile(file)).toThrow(/header length: file is 3 bytes/);
      writeFileSync(file, bytes);
      expect(() => verifySafetensorsFile(file, { header: new Uint8Array(8), size: bytes.length })).toThrow(/header: differs from the header that was written/);
      expect(() => verifySafetensorsFile(file, { header: new Uint8Array(8), size: 7 })).toThrow(/file size: is \d+ bytes; 7 were written/);
      expect(() => verifySafetensorsFile(path.join(dir, 'missing.safetensors'))).toThrow(/cannot read .*missing\.safetensors/);
    });
  });

  it('rejects a missing file with a UserError naming it', async () => {
    await expect(readSafetensors('/nonexistent/x.safetensors')).rejects.toThrow(/cannot read \/nonexistent\/x\.safetensors/);
  });

  describe('corrupt files', () => {
    const good = encode(sample());
    const t = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    it('too short for the length field', () => expectInputError(() => parseSafetensors(good.subarray(0, 5), 'f.st'), /^f\.st: header length: file is 5 bytes/));
    it('absurd header length', () => {
      const b = Buffer.from(good);
      b.writeBigUInt64LE(2n ** 40n);
      expectInputError(() => parseSafetensors(b, 'f.st'), /header length 1099511627776 exceeds/);
    });
    it('header length past the end', () => {
      const b = Buffer.from(good);
      b.writeBigUInt64LE(BigInt(good.length));
      expectInputError(() => parseSafetensors(b, 'f.st'), /runs past the end .* \(truncated\?\)/);
    });
    it('truncated data', () => expectInputError(() => parseSafetensors(good.subarray(0, good.length - 3), 'f.st'), /tensor ".*": data_offsets \[\d+, \d+\] run past the \d+-byte data section/));
    it('trailing bytes', () => expectInputError(() => parseSafetensors(Buffer.concat([good, Buffer.alloc(4)]), 'f.st'), /data section: tensors cover \d+ bytes but the data section has \d+/));
    it('not JSON', () => expectInputError(() => parseSafetensors(craft('{"a": [1,'), 'f.st'), /header: not valid UTF-8 JSON/));
    it('not starting with {', () => expectInputError(() => parseSafetensors(craft('[]'), 'f.st'), /must start with "\{"/));
    it('unknown dtype', () => expectInputError(() => parseSafetensors(craft({ x: { ...t, dtype: 'F33' } }, 8)), /tensor "x": unknown dtype "F33"/));
    it('unsupported dtype', () => expectInputError(() => parseSafetensors(craft({ x: { ...t, dtype: 'BF16', data_offsets: [0, 4] } }, 4)), /tensor "x": unsupported dtype "BF16"/));
    it('shape vs byte size', () => expectInputError(() => parseSafetensors(craft({ x: { ...t, shape: [3] } }, 8)), /F32 shape \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/));
    it('bad shape', () => expectInputError(() => parseSafetensors(craft({ x: { ...t, shape: [-1] } }, 8)), /shape must be a list of non-negative integers/));
    it('reversed offsets', () => expectInputError(() => parseSafetensors(craft({ x: { ...t, data_offsets: [8, 0] } }, 8)), /end before they begin/));
    it('overlapping tensors', () =>
      expectInputError(() => parseSafetensors(craft({ a: t, b: { ...t, data_offsets: [4, 12] } }, 12)), /tensor "b": data_offsets \[4, 12\] overlap tensor "a" \[0, 8\]/));
    it('a gap between tensors', () =>
      expectInputError(() => parseSafetensors(craft({ a: t, b: { ...t, data_offsets: [12, 20] } }, 20)), /tensor "b": data_offsets start at 12, leaving a gap after byte 8/));
    it('non-string metadata', () => expectInputError(() => parseSafetensors(craft({ __metadata__: { k: 1 } })), /__metadata__\.k: metadata values must be strings/));
  });

  // The CenterMask2 oracle fixtures (CENTERMASK2_FIXTURES, else ../shared/fixtures/centermask2) are
  // real-world files from another writer (python, insertion order). Checks the reader on every model
  // folder's weights and on the int8 * 2^e weight encoding they document.
  const models = fixtureModels({ files: ['weights.safetensors', 'state_dict.json'] });
  it('finds fixture model folders with weights and state_dict.json', () => {
    fixtureRoot();
    expect(models.length, `no model folder with weights.safetensors and state_dict.json in ${fixtureDir()}`).toBeGreaterThan(0);
  });
  it.each(models)('reads the CenterMask2 oracle weights of %s and matches state_dict.json sums', async (model) => {
    const root = fixtureRoot();
    const { tensors, metadata } = await readSafetensors(path.join(root, model, 'weights.safetensors'));
    const scales = JSON.parse(metadata.scale_exp2!) as Record<string, number>;
    const index = JSON.parse(readFileSync(path.join(root, model, 'state_dict.json'), 'utf8')).tensors as {
      name: string; shape: number[]; stored_dtype: string; scale_exp2: number | null; sum_f64: number;
    }[];
    // A folder may leave out roi_heads.* (V19slim in the default set, README); everything else must be there.
    const withRoi = [...tensors.keys()].some((k) => k.startsWith('roi_heads.'));
    const stored = index.filter((e) => withRoi || !e.name.startsWith('roi_heads.'));
    expect([...tensors.keys()].sort()).toEqual(stored.map((e) => e.name).sort());
    for (const e of stored) {
      const t = tensors.get(e.name)!;
      expect(t.dtype, e.name).toBe(e.stored_dtype);
      expect(t.shape, e.name).toEqual(e.shape);
      const scale = e.scale_exp2 === null ? 1 : 2 ** scales[e.name]!;
      let sum = 0;
      for (const v of t.data as Float32Array | Int8Array) sum += v * scale;
      expect(sum, e.name).toBeCloseTo(e.sum_f64, 6);
    }
  });
});
