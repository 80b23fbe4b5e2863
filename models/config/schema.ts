// Typed config leaves. Each default carries its type so that a YAML value or a command-line
// override is checked against it (as yacs does, but per element and with int accepted where a
// float is expected). Lists and tuples are the same thing here, as yacs lets one replace the other.
import { NotALiteral, parsePyLiteral } from './py-literal';

export type LeafType =
  | 'int' | 'float' | 'bool' | 'str' | 'float|null'
  | 'int[]' | 'float[]' | 'str[]' | 'bool[]' | 'float[][]' | 'any[]';

export interface Leaf<T> {
  readonly kind: 'leaf';
  readonly type: LeafType;
  readonly value: T;
}

export interface SchemaNode {
  readonly [key: string]: Leaf<unknown> | SchemaNode;
}

/** The plain values a schema describes (what code reads: cfg.MODEL.FCOS.NUM_CLASSES). */
export type ValuesOf<S> = { [K in keyof S]: S[K] extends Leaf<infer T> ? T : ValuesOf<S[K]> };

const leaf = <T>(type: LeafType, value: T): Leaf<T> => ({ kind: 'leaf', type, value });
export const int = (v: number): Leaf<number> => leaf('int', v);
export const float = (v: number): Leaf<number> => leaf('float', v);
export const floatOrNull = (v: number | null): Leaf<number | null> => leaf('float|null', v);
export const bool = (v: boolean): Leaf<boolean> => leaf('bool', v);
export const str = (v: string): Leaf<string> => leaf('str', v);
export const ints = (v: number[]): Leaf<number[]> => leaf('int[]', v);
export const floats = (v: number[]): Leaf<number[]> => leaf('float[]', v);
export const strs = (v: string[]): Leaf<string[]> => leaf('str[]', v);
export const bools = (v: boolean[]): Leaf<boolean[]> => leaf('bool[]', v);
export const floatLists = (v: number[][]): Leaf<number[][]> => leaf('float[][]', v);
export const anyList = (v: unknown[]): Leaf<unknown[]> => leaf('any[]', v);

export function isLeaf(x: Leaf<unknown> | SchemaNode): x is Leaf<unknown> {
  return (x as Leaf<unknown>).kind === 'leaf' && typeof (x as Leaf<unknown>).type === 'string';
}

const DESCRIBE: Record<LeafType, string> = {
  int: 'an int', float: 'a number', bool: 'a boolean (True/False)', str: 'a string', 'float|null': 'a number or null',
  'int[]': 'a list of ints', 'float[]': 'a list of numbers', 'str[]': 'a list of strings', 'bool[]': 'a list of booleans',
  'float[][]': 'a list of lists of numbers', 'any[]': 'a list',
};

const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown) => typeof v === 'number' && !Number.isNaN(v);
const ELEMENT: Partial<Record<LeafType, (v: unknown) => boolean>> = {
  'int[]': isInt,
  'float[]': isNum,
  'str[]': (v) => typeof v === 'string',
  'bool[]': (v) => typeof v === 'boolean',
  'float[][]': (v) => Array.isArray(v) && v.every(isNum),
  'any[]': () => true,
};

/**
 * Checks (and, for Python-literal strings, converts) a value for a leaf. Returns the value to
 * store, or throws an Error whose message says what was expected.
 */
export function coerce(type: LeafType, raw: unknown): unknown {
  let v = raw;
  if (typeof raw === 'string' && type !== 'str') {
    try {
      v = parsePyLiteral(raw);
    } catch (err) {
      if (!(err instanceof NotALiteral)) throw err;
    }
  }
  const ok = (() => {
    switch (type) {
      case 'int': return isInt(v);
      case 'float': return isNum(v);
      case 'float|null': return v === null || isNum(v);
      case 'bool': return typeof v === 'boolean';
      case 'str': return typeof v === 'string';
      default: return Array.isArray(v) && v.every(ELEMENT[type]!);
    }
  })();
  if (!ok) {
    const hint = type.endsWith('[]') && !Array.isArray(v) ? ' (a YAML list like [1, 2] or a Python tuple like (1, 2))' : '';
    throw new Error(`expected ${DESCRIBE[type]}${hint}, got ${show(raw)}`);
  }
  return Array.isArray(v) ? structuredClone(v) : v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
