// numpy arrays as pickle rebuilds them, without numpy: `_reconstruct` makes an empty array whose
// BUILD state (version, shape, dtype, fortran_order, raw bytes) fills it; protocol 5 uses
// `_frombuffer(buffer, dtype, shape, order)` instead; `dtype(code, align, copy)` plus its BUILD
// state gives the element type and byte order. The result is a C-order little-endian HostTensor.
import { halfBitsToFloat } from './f16';
import { hostTensor, typedArrayFromBytes, numel, type DType, type HostTensor } from './host-tensor';
import { describeValue } from './limits';
import type { PyStateful } from './pickle';

const CODES: Record<string, DType> = {
  f2: 'F16', f4: 'F32', f8: 'F64', i1: 'I8', u1: 'U8', i4: 'I32', i8: 'I64', b1: 'BOOL',
};
const ITEM_BYTES: Record<DType, number> = { F16: 2, F32: 4, F64: 8, I8: 1, U8: 1, I32: 4, I64: 8, BOOL: 1 };

export class NumpyDType implements PyStateful {
  /** Undefined for dtypes we cannot convert (strings, objects, complex): an error only if used. */
  readonly dtype: DType | undefined;
  /** '<' little, '>' big, '|' not applicable, '=' native (little on every host we run on). */
  byteOrder = '=';

  constructor(readonly code: string) {
    this.dtype = CODES[code.replace(/^[<>|=]/, '')];
    if (/^[<>|=]/.test(code)) this.byteOrder = code[0]!;
  }

  setState(state: unknown): void {
    // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
    if (!Array.isArray(state) || typeof state[1] !== 'string') throw new Error('unexpected numpy dtype state');
    this.byteOrder = state[1];
  }
}

/**
 * What `numpy.core.multiarray._reconstruct` returns; BUILD gives it its state. Conversion waits
 * until the array is used as a tensor, so an unsupported array outside the weights is harmless.
 */
export class NumpyArray implements PyStateful {
  private state: { shape: unknown; dtype: unknown; fortran: boolean; raw: unknown } | undefined;

  setState(state: unknown): void {
    if (!Array.isArray(state)) throw new Error('unexpected numpy array state');
    // Version 1 states have a leading version number; very old ones do not.
    const [shape, dtype, fortran, raw] = state.length === 5 ? state.slice(1) : state;
    this.state = { shape, dtype, fortran: fortran === true || fortran === 1, raw };
  }

  /** A C-order copy; `reserve(bytes)` (the checkpoint's MaterializeBudget) is asked before the
   *  copy is allocated, once the byte count is known to match the data. */
  toTensor(reserve?: (bytes: number) => void): HostTensor {
    if (!this.state) throw new Error('numpy array was never given its data');
    const { shape, dtype, fortran, raw } = this.state;
    if (!(dtype instanceof NumpyDType)) throw new Error('numpy array state has no dtype');
    if (Array.isArray(raw)) throw new Error('numpy object arrays are not supported');
    return arrayFromBytes(toBytes(raw), dtype, checkShape(shape), fortran, reserve);
  }
}

/** numpy.core.numeric._frombuffer(buffer, dtype, shape, order), protocol 5's array pickle. */
export function ndarrayFromBuffer(args: unknown[]): NumpyArray {
  const [buf, dtype, shape, order] = args;
  const a = new NumpyArray();
  a.setState([shape, dtype, order === 'F', buf]);
  return a;
}

/** numpy.core.multiarray.scalar(dtype, bytes): a numpy scalar such as np.float32(2.5). */
export function numpyScalar(args: unknown[]): number | bigint | boolean {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDType)) throw new Error('scalar without a numpy dtype');
  const t = arrayFromBytes(toBytes(raw), dtype, [], false);
  const v = t.data[0]!;
  return t.dtype === 'BOOL' ? v !== 0 : t.dtype === 'F16' ? halfBitsToFloat(v as number) : v;
}

/** Python-2 pickles hand numpy its bytes as a latin-1 str; protocol 3+ as bytes. */
function toBytes(raw: unknown): Uint8Array {
  if (raw instanceof Uint8Array) return raw;
  if (typeof raw === 'string') return Uint8Array.from(Buffer.from(raw, 'latin1'));
  throw new Error('numpy array data is neither bytes nor a latin-1 string');
}

function checkShape(shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`bad numpy shape: ${describeValue(shape)}; expected a tuple of non-negative ints`);
  }
  return shape as number[];
}

function arrayFromBytes(bytes: Uint8Array, dt: NumpyDType, shape: number[], fortran: boolean, reserve?: (bytes: number) => void): HostTensor {
  if (!dt.dtype) throw new Error(`numpy dtype '${dt.code}' is not supported (expected float16/32/64, int8/32/64, uint8 or bool)`);
  const size = ITEM_BYTES[dt.dtype];
  let n = 1;
  for (const d of shape) n *= d;
  if (bytes.byteLength !== n * size) {
    throw new Error(`numpy ${dt.code} array of shape [${shape}] needs ${n * size} bytes, got ${bytes.byteLength}`);
  }
  reserve?.(bytes.byteLength);
  let b: Uint8Array = new Uint8Array(bytes); // a copy: the byte swap below must not touch the source
  if (dt.byteOrder === '>' && size > 1) {
    for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
  }
  if (fortran && shape.length > 1) b = fortranToC(b, shape, size);
  return hostTensor(dt.dtype, shape, typedArrayFromBytes(dt.dtype, b));
}

/** Reorders column-major element bytes into row-major order. */
function fortranToC(src: Uint8Array, shape: number[], size: number): Uint8Array {
  const out = new Uint8Array(src.length);
  const fStride: number[] = [];
  let s = 1;
  for (const d of shape) {
    fStride.push(s);
    s *= d;
  }
  const idx = new Array<number>(shape.length).fill(0);
  const n = numel(shape);
  for (let c = 0; c < n; c++) {
    let f = 0;
    for (let k = 0; k < shape.length; k++) f += idx[k]! * fStride[k]!;
    out.set(src.subarray(f * size, f * size + size), c * size);
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}
