// A restricted unpickler: it reads the pickle opcodes (protocols 0-5) that torch.save and
// pickle.dump produce for dicts, OrderedDicts, tensors and numpy arrays, and executes nothing.
// The only callables are the ones in the `globals` allow-list handed in by the caller; any other
// GLOBAL/STACK_GLOBAL (os.system, builtins.eval, ...) fails with an error that names it.
//
// Python values map to: None -> null, bool -> boolean, int -> number (bigint beyond 2^53),
// float -> number, str -> string, bytes/bytearray -> Uint8Array, tuple/list -> array,
// dict -> Map (insertion-ordered), set/frozenset -> Set. Python-2 `str` (STRING opcodes) is
// decoded as latin-1, as `pickle.load(f, encoding="latin1")` does for Detectron2's .pkl files.
//
// Hostile input is bounded (limits.ts): memo entries, stack items, MARK depth and integer sizes.
import { InputError } from '../../runtime/errors';
import { MAX_INT_BYTES, MAX_MARK_DEPTH, MAX_MEMO_ENTRIES, MAX_STACK_ITEMS } from './limits';

/** An allow-listed global. `call` implements REDUCE/NEWOBJ on it; BUILD goes to `PyStateful`. */
export interface PyGlobal {
  readonly qualname: string;
  call?(args: unknown[], kwargs?: Map<unknown, unknown>): unknown;
}

/** Objects that accept BUILD (Python's __setstate__). */
export interface PyStateful {
  setState(state: unknown): void;
}

export type GlobalTable = ReadonlyMap<string, PyGlobal>;

export interface UnpickleOptions {
  /** File name for error messages. */
  file: string;
  /** Allowed globals by "module.name". */
  globals: GlobalTable;
  /** Resolves PERSID/BINPERSID references (torch storages); absent: persistent ids are refused. */
  persistentLoad?: (pid: unknown) => unknown;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode; legacy torch files hold several pickles back to back. */
  end: number;
}

const MARK = Symbol('mark');

function isStateful(v: unknown): v is PyStateful {
  return typeof v === 'object' && v !== null && typeof (v as PyStateful).setState === 'function';
}

/** Python 2 module names that pickles written by Python 2 use. */
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

export function unpickle(bytes: Uint8Array, start: number, opts: UnpickleOptions): UnpickleResult {
  const { file } = opts;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = start;
  let opPos = start;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  /** Items on the stacks saved by MARK (the current `stack` excluded). */
  let savedItems = 0;
  const memo = new Map<number, unknown>();

  const fail: (problem: string) => never = (problem) => {
    throw new InputError(file, `pickle offset ${opPos}`, problem);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.byteLength) fail(`truncated pickle: needs ${n} more bytes at offset ${pos}, file has ${bytes.byteLength}`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const b = bytes.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail('truncated pickle: missing newline');
    const s = latin1.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const decodeUtf8 = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      return fail('invalid UTF-8 in a unicode string');
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (prev === undefined) fail('no MARK on the stack');
    stack = prev;
    savedItems -= prev.length;
    return items;
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const qualname = `${PY2_MODULES[module] ?? module}.${name}`;
    const g = opts.globals.get(qualname);
    if (!g) fail(`refusing to load global "${qualname}": only tensors, numpy arrays and plain containers are allowed in a checkpoint`);
    return g;
  };
  const callGlobal = (fn: unknown, args: unknown, kwargs?: Map<unknown, unknown>): unknown => {
    if (typeof fn !== 'object' || fn === null || typeof (fn as PyGlobal).qualname !== 'string') fail('REDUCE on something that is not an allowed global');
    const g = fn as PyGlobal;
    if (!g.call) fail(`"${g.qualname}" cannot be called`);
    if (!Array.isArray(args)) fail(`arguments to "${g.qualname}" are not a tuple`);
    try {
      return g.call(args as unknown[], kwargs);
    } catch (err) {
      if (err instanceof InputError) throw err;
      return fail(`${g.qualname}: ${(err as Error).message}`);
    }
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    if (b.length > MAX_INT_BYTES) fail(`an integer of ${b.length} bytes (at most ${MAX_INT_BYTES} are read: quadratic to decode, and no checkpoint holds one)`);
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return smallest(v);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (!Array.isArray(target)) fail('APPEND(S) on something that is not a list');
    // A loop, not push(...items): spreading a list of ~100k items overflows the JS stack.
    for (const it of items) (target as unknown[]).push(it);
  };
  const addItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Set)) fail('ADDITEMS on something that is not a set');
    for (const it of items) (target as Set<unknown>).add(it);
  };
  const memoPut = (key: unknown): void => {
    if (typeof key !== 'number') fail(`memo key ${String(key)} is too large`);
    const k = key as number;
    if (!memo.has(k) && memo.size >= MAX_MEMO_ENTRIES) fail(`more than ${MAX_MEMO_ENTRIES} memo entries (limit for a checkpoint)`);
    memo.set(k, top());
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) fail(`memo key ${i} is not defined`);
    return memo.get(i);
  };

  for (;;) {
    if (stack.length + savedItems > MAX_STACK_ITEMS) fail(`more than ${MAX_STACK_ITEMS} items on the pickle stack (limit for a checkpoint)`);
    opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const p = u8();
        if (p > 5) fail(`pickle protocol ${p} is newer than 5`);
        break;
      }
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} items on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        if (marks.length >= MAX_MARK_DEPTH) fail(`MARKs nested more than ${MAX_MARK_DEPTH} deep (limit for a checkpoint)`);
        marks.push(stack);
        savedItems += stack.length;
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0) popMark(); // POP of a MARK (legal, rare)
        else stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;

      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT (text): also the protocol-0 spelling of booleans
        const s = line();
        if (s === '01') stack.push(true);
        else if (s === '00') stack.push(false);
        else stack.push(parseIntText(s, fail));
        break;
      }
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4c: stack.push(parseIntText(line().replace(/L$/, ''), fail)); break; // LONG (text)
      case 0x8a: stack.push(decodeLong(take(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail('negative LONG4 length');
        stack.push(decodeLong(take(n)));
        break;
      }
      case 0x46: { // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[-+]?nan$/i.test(s)) fail(`bad FLOAT ${JSON.stringify(s)}`);
        stack.push(v);
        break;
      }
      case 0x47: { // BINFLOAT: big-endian double
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }

      case 0x53: stack.push(parseQuotedString(line(), fail)); break; // STRING (protocol 0, Python 2 str)
      case 0x54: { // BINSTRING
        const n = i32();
        if (n < 0) fail('negative BINSTRING length');
        stack.push(latin1.decode(take(n)));
        break;
      }
      case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x56: stack.push(decodeRawUnicodeEscape(line())); break; // UNICODE (protocol 0)
      case 0x58: stack.push(decodeUtf8(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(decodeUtf8(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(decodeUtf8(take(u64()))); break; // BINUNICODE8
      case 0x42: stack.push(new Uint8Array(take(u32()))); break; // BINBYTES
      case 0x43: stack.push(new Uint8Array(take(u8()))); break; // SHORT_BINBYTES
      case 0x8e: stack.push(new Uint8Array(take(u64()))); break; // BINBYTES8
      case 0x96: stack.push(new Uint8Array(take(u64()))); break; // BYTEARRAY8

      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: // TUPLE
      case 0x6c: { // LIST (both pop to the MARK; read the items before touching `stack`)
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        addItems(top(), items);
        break;
      }
      case 0x91: { // FROZENSET
        const items = popMark();
        stack.push(new Set(items));
        break;
      }

      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(callGlobal(fn, args));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        stack.push(callGlobal(cls, args));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof Map)) fail('NEWOBJ_EX kwargs are not a dict');
        stack.push(callGlobal(cls, args, kwargs as Map<unknown, unknown>));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (isStateful(obj)) {
          try {
            obj.setState(state);
          } catch (err) {
            if (err instanceof InputError) throw err;
            fail(`setting the state of a ${obj.constructor.name}: ${(err as Error).message}`);
          }
        } else if (obj instanceof Map) {
          // An OrderedDict subclass instance's __dict__ (a state_dict's `_metadata`): not data.
          if (state !== null && !(state instanceof Map)) fail('BUILD on a dict with a non-dict state');
        } else {
          fail('BUILD on an object that takes no state');
        }
        break;
      }

      case 0x70: memoPut(parseIntText(line(), fail)); break; // PUT
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x67: stack.push(memoGet(parseIntText(line(), fail) as number)); break; // GET
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET

      case 0x50: // PERSID (text id)
      case 0x51: { // BINPERSID
        const pid = op === 0x50 ? line() : pop();
        if (!opts.persistentLoad) fail('persistent id found, but this file type has no external storage');
        stack.push(opts.persistentLoad(pid));
        break;
      }

      case 0x97: // NEXT_BUFFER
      case 0x98: // READONLY_BUFFER
        fail('out-of-band pickle buffers are not supported');
        break;
      case 0x69: // INST
      case 0x6f: // OBJ
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        fail(`opcode 0x${op.toString(16)} builds arbitrary objects and is not allowed`);
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16)} (not a pickle, or a corrupt one)`);
    }
  }
}

function smallest(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntText(s: string, fail: (problem: string) => never): number | bigint {
  if (s.length > MAX_INT_BYTES) fail(`an integer of ${s.length} digits (at most ${MAX_INT_BYTES} are read)`);
  if (!/^[-+]?\d+$/.test(s.trim())) fail(`bad integer ${JSON.stringify(s)}`);
  return smallest(BigInt(s.trim()));
}

/** Protocol-0 STRING: a Python repr in single or double quotes, with backslash escapes. */
function parseQuotedString(s: string, fail: (p: string) => never): string {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s.length < 2 || s[s.length - 1] !== q) fail(`bad STRING ${JSON.stringify(s)}`);
  const body = s.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return simple[e] ?? `\\${e}`;
  });
}

/** Protocol-0 UNICODE: raw-unicode-escape, i.e. latin-1 text with \uXXXX and \UXXXXXXXX escapes. */
function decodeRawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a?: string, b?: string) =>
    String.fromCodePoint(parseInt((a ?? b)!, 16)),
  );
}
