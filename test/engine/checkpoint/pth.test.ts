import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../runtime/errors';
import { readPth, readTorchLegacy, readTorchZip } from '../../../engine/checkpoint/pth';
import { expectFixtureTensors, fixtureBytes } from './fixtures';

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

describe('torch .pth', () => {
  it.each(['zip.pth', 'zip_proto4.pth', 'legacy.pth'])('%s: every tensor, dtype, view and value as torch saved it', (name) => {
    const sd = readPth(fixtureBytes(name), name);
    expectFixtureTensors(name, sd.tensors);
  });

  it('unwraps {"model": ...} and lists the other top-level entries', () => {
    const sd = readTorchZip(fixtureBytes('zip.pth'), 'zip.pth');
    expect(sd.ignored).toEqual(["iteration (outside 'model')", "__author__ (outside 'model')"]);
  });

  it.each(['forbidden_global.pth'])('%s: a pickled os.system call is refused, naming the global', (name) => {
    const err = inputError(() => readPth(fixtureBytes(name), name));
    expect(err.message).toMatch(/^forbidden_global\.pth: pickle offset \d+: refusing to load global "posix\.system"/);
  });

  it('names a storage entry missing from the zip', () => {
    const entries = unzipSync(fixtureBytes('zip.pth'));
    delete entries['zip/data/3'];
    const err = inputError(() => readTorchZip(zipSync(entries, { level: 0 }), 'broken.pth'));
    expect(err.message).toBe('broken.pth: zip/data/3: storage entry is missing from the archive');
  });

  it('names a storage entry of the wrong size', () => {
    const entries = unzipSync(fixtureBytes('zip.pth'));
    entries['zip/data/0'] = entries['zip/data/0']!.subarray(4);
    const err = inputError(() => readTorchZip(zipSync(entries, { level: 0 }), 'broken.pth'));
    expect(err.message).toMatch(/^broken\.pth: zip\/data\/0: storage 0: F32 x 54 needs 216 bytes, found 212$/);
  });

  it('reads a zip whose entries are deflated (not how torch writes them, but legal)', () => {
    const entries = unzipSync(fixtureBytes('zip.pth'));
    expectFixtureTensors('zip.pth', readTorchZip(zipSync(entries, { level: 6 }), 'deflated.pth').tensors);
  });

  it('rejects a zip without data.pkl', () => {
    const err = inputError(() => readTorchZip(zipSync({ 'a/b.txt': new Uint8Array(1) }), 'other.zip'));
    expect(err.message).toMatch(/other\.zip: zip: expected exactly one <name>\/data\.pkl entry, found 0/);
  });

  it('reports a truncated legacy file', () => {
    const bytes = fixtureBytes('legacy.pth');
    const err = inputError(() => readTorchLegacy(bytes.subarray(0, bytes.length - 10), 'cut.pth'));
    expect(err.message).toMatch(/^cut\.pth: storage \d+: truncated file: (element count|\d+ bytes) expected at offset \d+/);
    const err2 = inputError(() => readTorchLegacy(bytes.subarray(0, 400), 'cut.pth'));
    expect(err2.message).toMatch(/^cut\.pth: pickle offset \d+: truncated pickle/);
  });

  it('rejects a tensor view that reaches outside its storage', () => {
    // Patch the legacy file's first tensor size from 2 to 9 rows: the view now overruns storage.
    const bytes = new Uint8Array(fixtureBytes('legacy.pth'));
    const at = Buffer.from(bytes).indexOf(Buffer.from([0x28, 0x4b, 0x02, 0x4b, 0x03, 0x4b, 0x03, 0x4b, 0x03, 0x74])); // (K2 K3 K3 K3 t
    expect(at).toBeGreaterThan(0);
    bytes[at + 2] = 9;
    const err = inputError(() => readTorchLegacy(bytes, 'patched.pth'));
    expect(err.message).toMatch(/^patched\.pth: tensor "backbone\.bottom_up\.stem\.stem_1\/conv\.weight": tensor view \(offset 0, size \[9,3,3,3\], stride \[27,9,3,1\]\) reaches element 242 of a 54-element storage$/);
  });

  it('names a legacy storage view that runs past its storage (was a bare Error with a stack)', () => {
    const str = (x: string) => `\x8c${String.fromCharCode(x.length)}${x}`;
    const magic = Buffer.alloc(10);
    let m = 0x1950a86a20f9469cfc6cn;
    for (let i = 0; i < 10; i++, m >>= 8n) magic[i] = Number(m & 0xffn);
    const pickles = [
      Buffer.concat([Buffer.from('\x80\x02\x8a\x0a', 'latin1'), magic, Buffer.from('.')]),
      Buffer.from('\x80\x02M\xe9\x03.', 'latin1'),
      Buffer.from('\x80\x02}.', 'latin1'),
      // {'w': _rebuild_tensor_v2(view '1' = elements [2, 6) of the 4-element storage '0', 0, (4,), (1,), False, OrderedDict())}
      Buffer.from(
        `\x80\x02}${str('w')}ctorch._utils\n_rebuild_tensor_v2\n((${str('storage')}ctorch\nFloatStorage\n${str('0')}${str('cpu')}K\x04(${str('1')}K\x02K\x04ttQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.`,
        'latin1',
      ),
      Buffer.from(`\x80\x02](${str('0')}e.`, 'latin1'),
    ];
    const count = Buffer.alloc(8);
    count.writeBigInt64LE(4n);
    const bytes = new Uint8Array(Buffer.concat([...pickles, count, Buffer.alloc(16)]));
    const err = inputError(() => readTorchLegacy(bytes, 'view.pth'));
    expect(err.message).toBe('view.pth: storage 1: storage view 1 runs past storage 0');
  });
});
