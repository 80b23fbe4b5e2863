// A tensor in host memory, as checkpoint files hold them: a dtype tag (safetensors spelling), a
// row-major shape and a typed array with the elements in C order. It is what every checkpoint
// reader produces and every writer consumes; moving it to the GPU is the tensor code's business.
import { numelOf } from '../../runtime/shape';

export type DType = 'F32' | 'F16' | 'F64' | 'I8' | 'U8' | 'I32' | 'I64' | 'BOOL';

/** The typed array for each dtype. F16 holds raw IEEE half bits (Node 20 has no Float16Array). */
export interface DTypeArrays {
  F32: Float32Array;
  F16: Uint16Array;
  F64: Float64Array;
  I8: Int8Array;
  U8: Uint8Array;
  I32: Int32Array;
  I64: BigInt64Array;
  BOOL: Uint8Array;
}

export type HostData = DTypeArrays[DType];

export type HostTensor = {
  [D in DType]: { dtype: D; shape: number[]; data: DTypeArrays[D] };
}[DType];

export const DTYPES: readonly DType[] = ['F32', 'F16', 'F64', 'I8', 'U8', 'I32', 'I64', 'BOOL'];

export const DTYPE_BYTES: Record<DType, number> = {
  F32: 4, F16: 2, F64: 8, I8: 1, U8: 1, I32: 4, I64: 8, BOOL: 1,
};

const CTORS = {
  F32: Float32Array, F16: Uint16Array, F64: Float64Array, I8: Int8Array,
  U8: Uint8Array, I32: Int32Array, I64: BigInt64Array, BOOL: Uint8Array,
} as const;

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

/** Elements of a shape (the runtime's numelOf, under the name the checkpoint readers use). */
export const numel = numelOf;

/** Builds a tensor, checking that the array type and length agree with dtype and shape. */
export function hostTensor<D extends DType>(dtype: D, shape: readonly number[], data: DTypeArrays[D]): HostTensor {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`hostTensor: bad dimension ${d} in shape [${shape}]`);
  }
  if (!(data instanceof CTORS[dtype])) {
    throw new Error(`hostTensor: ${dtype} needs a ${CTORS[dtype].name}, got ${data.constructor.name}`);
  }
  if (data.length !== numel(shape)) {
    throw new Error(`hostTensor: shape [${shape}] has ${numel(shape)} elements but the data has ${data.length}`);
  }
  return { dtype, shape: [...shape], data } as HostTensor;
}

/** Copies little-endian bytes into a fresh (hence aligned) typed array of the dtype. */
export function typedArrayFromBytes<D extends DType>(dtype: D, bytes: Uint8Array): DTypeArrays[D] {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new Error(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new CTORS[dtype](copy.buffer) as DTypeArrays[D];
}

/** The little-endian bytes of a tensor's data (a view, not a copy). */
export function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

export function isHostTensor(v: unknown): v is HostTensor {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as { dtype?: unknown; shape?: unknown; data?: unknown };
  return isDType(t.dtype) && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}
