// Hostile checkpoints (engine/checkpoint/limits.ts): each one is a small file generated here that
// once hung, crashed or allocated without bound, and must now give an InputError that names the
// file, the place and the limit, quickly and without a large allocation.
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../runtime/errors';
import { ALLOWED_GLOBALS } from '../../../engine/checkpoint/allowed-globals';
import { hostTensor } from '../../../engine/checkpoint/host-tensor';
import { parseCheckpoint } from '../../../engine/checkpoint/load';
import { MAX_ENTRIES, MAX_MARK_DEPTH, MAX_MEMO_ENTRIES, MAX_NESTING, MAX_STACK_ITEMS } from '../../../engine/checkpoint/limits';
import { unpickle } from '../../../engine/checkpoint/pickle';
import { readPkl } from '../../../engine/checkpoint/pkl';
import { readTorchLegacy, readTorchZip } from '../../../engine/checkpoint/pth';
import { toStateDict } from '../../../engine/checkpoint/state-dict';
import { TorchStorage, TorchTensorRef } from '../../../engine/checkpoint/torch-tensor';
import { fixtureBytes } from './fixtures';

/** A pickle from opcode strings (latin-1) and byte arrays. */
function p(...parts: (string | number[] | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from(x as Uint8Array)));
  return new Uint8Array(Buffer.concat(chunks));
}
const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255];
/** SHORT_BINUNICODE */
const str = (s: string) => `\x8c${String.fromCharCode(s.length)}${s}`;

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return err;
  }
  throw new Error('expected an InputError');
}

/** `levels` dicts, each holding the previous one (memoized) under 'a' and 'b': 2^levels paths. */
function billionLaughs(levels: number): Uint8Array {
  const parts: string[] = ['\x80\x02', '}q\x00'];
  for (let i = 1; i <= levels; i++) {
    parts.push('0'); // POP the previous dict (it stays in the memo)
    parts.push(`}q${String.fromCharCode(i)}(${str('a')}h${String.fromCharCode(i - 1)}${str('b')}h${String.fromCharCode(i - 1)}u`);
  }
  parts.push('.');
  return p(...parts);
}

/** A torch zip .pth holding one F32 tensor 'w' rebuilt from a `storageNumel`-element storage. */
function torchZip(storageNumel: number, size: number[], stride: number[]): Uint8Array {
  const tuple = (xs: number[]) => `(${xs.map((x) => `J${String.fromCharCode(...u32(x))}`).join('')}t`;
  const pkl = p(
    '\x80\x02}',
    str('w'),
    'ctorch._utils\n_rebuild_tensor_v2\n(',
    `(${str('storage')}ctorch\nFloatStorage\n${str('0')}${str('cpu')}J${String.fromCharCode(...u32(storageNumel))}tQ`,
    'K\x00',
    tuple(size),
    tuple(stride),
    '\x89ccollections\nOrderedDict\n)RtRs.',
  );
  return zipSync({ 'archive/data.pkl': pkl, 'archive/data/0': new Uint8Array(4 * storageNumel) }, { level: 0 });
}

describe('checkpoint limits', () => {
  it('a "billion laughs" pickle (a memoized dict referenced twice per level, 39 levels) flattens once, fast', () => {
    const bytes = billionLaughs(39);
    expect(bytes.byteLength).toBeLessThan(900);
    const t0 = performance.now();
    const sd = readPkl(bytes, 'laughs.pkl');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(sd.tensors.size).toBe(0);
    // 'a.a.....a' reaches the bottom once; every 'b' is the same dict object again, reported.
    expect(sd.ignored).toHaveLength(39);
    expect(sd.ignored[0]).toBe(`${'a.'.repeat(38)}b (the same dict object as "${'a.'.repeat(38)}a", flattened there only)`);
    expect(sd.ignored[38]).toBe('b (the same dict object as "a", flattened there only)');
  });

  it('a dict that contains itself is a "self-referencing object"', () => {
    const bytes = p('\x80\x02}q\x00(', str('model'), '}q\x01', str('x'), 'h\x01su.');
    const err = inputError(() => readPkl(bytes, 'cycle.pkl'));
    expect(err.message).toBe('cycle.pkl: "x": self-referencing object: this dict contains itself (it is the dict at the top level); a state dict is a tree');
    const deeper = p('\x80\x02}q\x00', str('a'), '}q\x01', str('b'), 'h\x00ss.');
    expect(inputError(() => readPkl(deeper, 'cycle2.pkl')).message).toBe(
      'cycle2.pkl: "a.b": self-referencing object: this dict contains itself (it is the dict at the top level); a state dict is a tree',
    );
  });

  it('a 30,000-deep nested dict is an InputError, not a JS stack overflow', () => {
    const depth = 30_000;
    const bytes = p('\x80\x02', `}${str('k')}`.repeat(depth - 1), '}', 's'.repeat(depth - 1), '.');
    const err = inputError(() => readPkl(bytes, 'deep.pkl'));
    expect(err.message).toMatch(new RegExp(`^deep\\.pkl: "(k\\.)+k?\\.{0,3}": dicts nested more than ${MAX_NESTING} deep \\(limit for a checkpoint\\)$`));
    // ... and 1000 levels are still fine.
    const ok = p('\x80\x02', `}${str('k')}`.repeat(MAX_NESTING - 1), '}', str('k'), 'N', 's'.repeat(MAX_NESTING), '.');
    expect(readPkl(ok, 'ok.pkl').ignored).toEqual([`${'k.'.repeat(MAX_NESTING - 1)}k (None)`]);
  });

  it('deep nesting elsewhere (tuples, a tuple as a persistent id) never recurses', () => {
    const tuples = p('\x80\x02}', str('t'), 'N', '\x85'.repeat(30_000), 's.');
    expect(readPkl(tuples, 't.pkl').ignored).toEqual(['t (a sequence of 1)']);
    const pid = p('\x80\x02}', str('t'), 'N', '\x85'.repeat(30_000), 'Qs.');
    const zip = zipSync({ 'archive/data.pkl': pid }, { level: 0 });
    expect(inputError(() => readTorchZip(zip, 'pid.pth')).message).toBe(
      "pid.pth: persistent id: expected ('storage', type, key, location, numel), got a sequence of 1",
    );
  });

  it('the unpickler caps MARK depth, memo entries, stack items and integer sizes', () => {
    const load = (b: Uint8Array) => unpickle(b, 0, { file: 'x.pkl', globals: ALLOWED_GLOBALS });
    expect(inputError(() => load(p('('.repeat(30_000)))).message).toMatch(new RegExp(`MARKs nested more than ${MAX_MARK_DEPTH} deep`));
    expect(inputError(() => load(p('N', '\x94'.repeat(MAX_MEMO_ENTRIES + 1), '.'))).message).toMatch(
      new RegExp(`^x\\.pkl: pickle offset ${MAX_MEMO_ENTRIES + 1}: more than ${MAX_MEMO_ENTRIES} memo entries`),
    );
    expect(inputError(() => load(new Uint8Array(MAX_STACK_ITEMS + 2).fill(0x4e))).message).toMatch(/more than 10000000 items on the pickle stack/);
    const t0 = performance.now();
    expect(inputError(() => load(p('\x8b', u32(1 << 20), new Uint8Array(1 << 20), '.'))).message).toMatch(/an integer of 1048576 bytes/);
    expect(inputError(() => load(p('I', '9'.repeat(100_000), '\n.'))).message).toMatch(/an integer of 100000 digits/);
    expect(performance.now() - t0).toBeLessThan(1000);
    // a list of 200,000 items appended at once (push(...items) overflowed the JS stack)
    const list = load(p('](', 'N'.repeat(200_000), 'e.')).value as unknown[];
    expect(list).toHaveLength(200_000);
  });

  it('a stride-0 view expanding a 1-element storage to 5e7 elements is refused before allocating', () => {
    const bytes = torchZip(1, [50_000_000], [0]);
    expect(bytes.byteLength).toBeLessThan(1000);
    const err = inputError(() => parseCheckpoint(bytes, 'broadcast.pth'));
    expect(err.message).toBe(
      'broadcast.pth: tensor "w": tensor view (offset 0, size [50000000], stride [0]) repeats the elements of its 1-element storage to 50000000 elements (190.7 MiB); a view larger than its storage may take at most 16.0 MiB',
    );
    // a small broadcast (a bias expanded to 8 rows) still loads
    const small = parseCheckpoint(torchZip(3, [8, 3], [0, 1]), 'small.pth');
    expect(small.tensors.get('w')!.shape).toEqual([8, 3]);
  });

  it('a view whose size cannot exist is refused by its byte count', () => {
    const err = inputError(() => parseCheckpoint(torchZip(1, [1 << 30, 1 << 30], [0, 0]), 'huge.pth'));
    expect(err.message).toMatch(/^huge\.pth: tensor "w": tensor view \(offset 0, size \[1073741824,1073741824\], stride \[0,0\]\) has \d+ elements \(.*\); one tensor may take at most 4\.0 GiB$/);
  });

  it('many views of one storage: materialised once per object, and in total at most 2 x the file + 64 MiB', () => {
    const storage = new TorchStorage('0', 'F32', 1 << 20); // 4 MiB
    storage.setBytes(new Uint8Array(4 << 20));
    // The same tensor object under 1000 names: one copy, shared.
    const shared = new TorchTensorRef(storage, 0, [1 << 20], [1]);
    const same = toStateDict(new Map(Array.from({ length: 1000 }, (_, i) => [`t${i}`, shared])), 'same.pth', { sourceBytes: 4 << 20 });
    expect(same.tensors.size).toBe(1000);
    expect(same.tensors.get('t0')).toBe(same.tensors.get('t999'));
    // Distinct view objects of the whole storage: each is a copy, and the budget runs out at 72 MiB.
    const distinct = new Map(Array.from({ length: 30 }, (_, i) => [`v${i}`, new TorchTensorRef(storage, 0, [1 << 20], [1])]));
    const err = inputError(() => toStateDict(distinct, 'views.pth', { sourceBytes: 4 << 20 }));
    expect(err.message).toBe(
      'views.pth: tensor "v18": this tensor would bring the tensors materialised from this checkpoint to 76.0 MiB, more than the 72.0 MiB allowed for a file of this size (2 x its data + 64.0 MiB): views that repeat the same storage many times?',
    );
  });

  it(`caps the flattened entries at ${MAX_ENTRIES}`, () => {
    const many = new Map<string, unknown>(Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => [`k${i}`, i]));
    expect(inputError(() => toStateDict(many, 'many.pkl')).message).toBe(`many.pkl: k${MAX_ENTRIES}: more than ${MAX_ENTRIES} entries after flattening (limit for a checkpoint)`);
    const fine = new Map([['w', hostTensor('F32', [1], Float32Array.from([1]))]]);
    expect(toStateDict(fine, 'fine.pkl').tensors.size).toBe(1);
  });

  it('a zip bomb is rejected from the declared sizes, before inflating', () => {
    // A real deflated entry: 2 MiB of zeros compress ~1000x.
    const entries = unzipSync(fixtureBytes('zip.pth'));
    const bomb = zipSync({ ...entries, 'zip/extra': new Uint8Array(2 << 20) }, { level: 9 });
    expect(bomb.byteLength).toBeLessThan(64 << 10);
    expect(inputError(() => readTorchZip(bomb, 'bomb.pth')).message).toMatch(
      /^bomb\.pth: zip entry zip\/extra: declares 2\.0 MiB uncompressed from [\d.]+ (bytes|KiB) compressed, more than 64x \(a zip bomb\? torch\.save stores entries uncompressed\)$/,
    );
    // A central directory that claims 1 GiB for a small deflated entry: refused without inflating it.
    const small = zipSync({ 'archive/data.pkl': new Uint8Array(100) }, { level: 9 });
    const lying = patchDeclaredSizes(small, () => 1 << 30);
    const t0 = performance.now();
    expect(inputError(() => readTorchZip(lying, 'lying.pth')).message).toMatch(/^lying\.pth: zip entry archive\/data\.pkl: declares 1\.0 GiB uncompressed from [\d.]+ (bytes|KiB) compressed, more than 64x/);
    expect(performance.now() - t0).toBeLessThan(500);
    // Stored entries whose declared sizes add up to more than 8 GiB.
    const stored = zipSync({ 'a/data.pkl': new Uint8Array(4), 'a/data/0': new Uint8Array(4), 'a/data/1': new Uint8Array(4) }, { level: 0 });
    expect(inputError(() => readTorchZip(patchDeclaredSizes(stored, () => 0xf0000000), 'big.pth')).message).toMatch(
      /^big\.pth: zip entry a\/data\/1: the entries declare more than 8\.0 GiB uncompressed \(limit for a checkpoint\)$/,
    );
  });
});

/** Rewrites the uncompressed size of every central-directory entry. */
function patchDeclaredSizes(zip: Uint8Array, size: (i: number) => number): Uint8Array {
  const out = new Uint8Array(zip);
  const view = new DataView(out.buffer);
  let n = 0;
  for (let o = 0; o + 46 <= out.length; o++) {
    if (view.getUint32(o, true) === 0x02014b50) view.setUint32(o + 24, size(n++), true);
  }
  expect(n).toBeGreaterThan(0);
  return out;
}
