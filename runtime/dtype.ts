// Element types. bool is stored as one u32 per element (WGSL has no 8-bit storage type); f16
// storage needs the `shader-f16` feature. Arithmetic on f16 tensors is done by casting to f32.

export type DType = 'f32' | 'f16' | 'i32' | 'u32' | 'bool';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4, bool: 4 };

/** The WGSL storage element type of a dtype. */
export const WGSL_STORAGE: Record<DType, string> = { f32: 'f32', f16: 'f16', i32: 'i32', u32: 'u32', bool: 'u32' };

/** The WGSL type arithmetic is done in for a dtype (f16 storage is computed in f32). */
export const WGSL_COMPUTE: Record<DType, string> = { f32: 'f32', f16: 'f32', i32: 'i32', u32: 'u32', bool: 'u32' };

export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;

export function isFloat(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f16';
}

/** Host typed array returned by `data()`: f16 is widened to f32, bool is returned as Uint8Array. */
export type DataArray<D extends DType = DType> = D extends 'f32' | 'f16'
  ? Float32Array
  : D extends 'i32'
    ? Int32Array
    : D extends 'u32'
      ? Uint32Array
      : Uint8Array;

export function f16ToF32(h: number): number {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  let v: number;
  if (e === 0) v = f * 2 ** -24;
  else if (e === 0x1f) v = f ? NaN : Infinity;
  else v = (1 + f / 1024) * 2 ** (e - 15);
  return s ? -v : v;
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
/** Round-to-nearest-even f32 -> f16 bits. */
export function f32ToF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}
