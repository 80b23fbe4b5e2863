import { describe, expect, it } from 'vitest';
import { InputError } from '../../../runtime/errors';
import { ALLOWED_GLOBALS } from '../../../engine/checkpoint/allowed-globals';
import { unpickle } from '../../../engine/checkpoint/pickle';

/** Assembles a pickle from opcode strings (latin-1) and raw byte arrays. */
function p(...parts: (string | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((x) => (typeof x === 'string' ? [...Buffer.from(x, 'latin1')] : x)));
}
const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255];
const load = (bytes: Uint8Array, persistentLoad?: (pid: unknown) => unknown) =>
  unpickle(bytes, 0, { file: 'x.pkl', globals: ALLOWED_GLOBALS, persistentLoad }).value;

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  let err: unknown;
  try {
    load(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).toMatch(pattern);
}

describe('restricted unpickler', () => {
  it('reads protocol-0 text opcodes (Python 2 era files)', () => {
    // {'a': L, 'b': (None,), 'c': L} with L = [1, True, 12345678901234567890L, 2.5, u'\u00e9x', 'q\'s']
    const bytes = p('(dp0\nS\'a\'\np1\n(lp2\nI1\naI01\naL12345678901234567890L\naF2.5\naV\\u00e9x\nap3\nS\'q\\\'s\'\nasS\'b\'\n(Ntp4\nsS\'c\'\ng2\ns.');
    const v = load(bytes) as Map<unknown, unknown>;
    expect([...v.keys()]).toEqual(['a', 'b', 'c']);
    expect(v.get('a')).toEqual([1, true, 12345678901234567890n, 2.5, 'éx', "q's"]);
    expect(v.get('b')).toEqual([null]);
    expect(v.get('c')).toBe(v.get('a')); // GET returns the memoised object itself
  });

  it('reads binary ints, longs, floats, strings, bytes, sets and memo opcodes', () => {
    const bytes = p(
      '\x80\x02]q\x00(',
      'J', u32(-5 >>> 0), 'K\xff', 'M\x34\x12',
      '\x8a\x02\x00\xff', // LONG1 -256
      '\x8a\x00', // LONG1 0
      'G', [0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18], // BINFLOAT pi, big-endian
      'U\x03\xe9ab', // SHORT_BINSTRING, Python-2 str read as latin-1
      'C\x02\x01\x02', // SHORT_BINBYTES
      '\x8f(K\x01K\x02\x90', // EMPTY_SET + ADDITEMS
      '(K\x03\x91', // FROZENSET
      'h\x00', // BINGET 0: the list itself
      'e.',
    );
    const v = load(bytes) as unknown[];
    expect(v.slice(0, 6)).toEqual([-5, 255, 0x1234, -256, 0, Math.PI]);
    expect(v[6]).toBe('éab');
    expect(v[7]).toEqual(Uint8Array.from([1, 2]));
    expect(v[8]).toEqual(new Set([1, 2]));
    expect(v[9]).toEqual(new Set([3]));
    expect(v[10]).toBe(v); // recursive reference through the memo
  });

  it('builds an OrderedDict through REDUCE and ignores its __dict__ state', () => {
    const bytes = p('\x80\x02ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00kK\x07sb(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bK\x02u.');
    expect(load(bytes)).toEqual(new Map([['a', 1], ['b', 2]]));
  });

  it('refuses any global outside the allow-list, naming it', () => {
    rejects(p('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.'), /x\.pkl: pickle offset 2: refusing to load global "os\.system"/);
    rejects(p('\x80\x04\x8c\x08builtins\x8c\x04eval\x93.'), /refusing to load global "builtins\.eval"/);
    rejects(p('c__builtin__\ngetattr\n.'), /refusing to load global "builtins\.getattr"/); // Python 2 module name is mapped, then refused
  });

  it('refuses opcodes that build arbitrary objects', () => {
    rejects(p('(ios\nsystem\n.'), /opcode 0x69 builds arbitrary objects/);
  });

  it('reports truncation, garbage and misuse with the offset', () => {
    rejects(p('\x80\x02X\xff\x00\x00\x00ab'), /x\.pkl: pickle offset 2: truncated pickle: needs 255 more bytes/);
    rejects(p('\x80\x02K\x01'), /truncated pickle/);
    rejects(p('\xffabc'), /pickle offset 0: unknown pickle opcode 0xff/);
    rejects(p('\x80\x02h\x05.'), /memo key 5 is not defined/);
    rejects(p('\x80\x02K\x01K\x02.'), /STOP with 2 items on the stack/);
    rejects(p('\x80\x02K\x01Q.'), /persistent id found, but this file type has no external storage/);
    rejects(p('\x80\x02]K\x01K\x02s.'), /SETITEM\(S\) on something that is not a dict/);
    rejects(p('\x80\x02ccollections\nOrderedDict\nK\x01R.'), /arguments to "collections\.OrderedDict" are not a tuple/);
    rejects(p('\x80\x06N.'), /pickle protocol 6 is newer than 5/);
  });

  it('hands persistent ids to the caller', () => {
    const seen: unknown[] = [];
    const v = load(p('\x80\x02X\x01\x00\x00\x00k\x85Q.'), (pid) => (seen.push(pid), 'storage!'));
    expect(seen).toEqual([['k']]);
    expect(v).toBe('storage!');
  });

  it('turns failures inside an allowed global into an InputError naming it', () => {
    rejects(p('\x80\x02ccollections\nOrderedDict\n(K\x01tR.'), /pickle offset 31: collections\.OrderedDict: expects a list of \(key, value\) pairs$/);
  });
});
