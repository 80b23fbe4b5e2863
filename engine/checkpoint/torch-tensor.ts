// torch tensors as torch.save pickles them: a typed storage (raw bytes, found through a
// persistent id) plus `_rebuild_tensor_v2(storage, offset, size, stride, ...)`. Several tensors
// may view one storage at different offsets and strides, and in the legacy format the storage
// bytes come after the pickle, so a rebuild only records the view; `materialize` later copies it
// out as a contiguous HostTensor.
import { hostTensor, type DType, type HostTensor } from './host-tensor';
import { formatBytes, MAX_BROADCAST_BYTES, MAX_TENSOR_BYTES } from './limits';

/** Storage element types: our dtypes plus two that are widened losslessly on the way out. */
export type StorageDType = DType | 'BF16' | 'I16';

export const STORAGE_TYPES: Record<string, StorageDType> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16',
  LongStorage: 'I64', IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8',
  ByteStorage: 'U8', BoolStorage: 'BOOL',
};

export const STORAGE_ITEM_BYTES: Record<StorageDType, number> = {
  F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

const ARRAYS = {
  F32: Float32Array, F64: Float64Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array,
  I32: Int32Array, I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
} as const;

type StorageArray = InstanceType<(typeof ARRAYS)[StorageDType]>;

export class TorchStorage {
  private own: Uint8Array | undefined;
  private array: StorageArray | undefined;

  constructor(
    readonly key: string,
    readonly dtype: StorageDType,
    /** Element count from the persistent id. */
    readonly numel: number,
    /** Set for a legacy-format view into another storage: elements [offset, offset + numel). */
    private readonly base?: { storage: TorchStorage; offset: number },
  ) {}

  setBytes(bytes: Uint8Array): void {
    if (this.base) throw new Error(`storage ${this.key} is a view and has no bytes of its own`);
    const want = this.numel * STORAGE_ITEM_BYTES[this.dtype];
    if (bytes.byteLength !== want) {
      throw new Error(`storage ${this.key}: ${this.dtype} x ${this.numel} needs ${want} bytes, found ${bytes.byteLength}`);
    }
    this.own = bytes;
    this.array = undefined;
  }

  /** The raw bytes, once known (legacy files store them after the pickle). */
  bytes(): Uint8Array | undefined {
    if (!this.base) return this.own;
    const b = this.base.storage.bytes();
    const item = STORAGE_ITEM_BYTES[this.dtype];
    const [from, to] = [this.base.offset * item, (this.base.offset + this.numel) * item];
    if (b && to > b.byteLength) throw new Error(`storage view ${this.key} runs past storage ${this.base.storage.key}`);
    return b?.subarray(from, to);
  }

  /** The storage as a typed array of its element type (copied once, so it is aligned). */
  elements(): StorageArray {
    if (!this.array) {
      const b = this.bytes();
      if (!b) throw new Error(`storage ${this.key} has no data`);
      this.array = new ARRAYS[this.dtype](new Uint8Array(b).buffer) as StorageArray;
    }
    return this.array;
  }

  /** A sub-range view (legacy format `view_metadata`), sharing this storage's bytes. */
  view(key: string, offset: number, size: number): TorchStorage {
    return new TorchStorage(key, this.dtype, size, { storage: this, offset });
  }
}

export class TorchTensorRef {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}

  /**
   * A contiguous copy of the view (BF16 widened to F32, I16 to I32). Before anything is allocated
   * the view is checked against its storage and the limits (limits.ts): it must stay inside the
   * storage, one tensor may take at most MAX_TENSOR_BYTES, and a view with more elements than its
   * storage holds (stride 0, overlapping strides) at most MAX_BROADCAST_BYTES. `reserve(bytes)`
   * (the checkpoint's MaterializeBudget) is asked last and may refuse too.
   */
  materialize(reserve?: (bytes: number) => void): HostTensor {
    const { storage, offset, size, stride } = this;
    const view = `tensor view (offset ${offset}, size [${size}], stride [${stride}])`;
    let n = 1;
    for (const d of size) n *= d;
    const outItem = storage.dtype === 'BF16' || storage.dtype === 'I16' ? 4 : STORAGE_ITEM_BYTES[storage.dtype];
    const bytes = n * outItem;
    if (!Number.isSafeInteger(bytes) || bytes > MAX_TENSOR_BYTES) {
      throw new Error(`${view} has ${n} elements (${formatBytes(bytes)}); one tensor may take at most ${formatBytes(MAX_TENSOR_BYTES)}`);
    }
    if (n > 0) {
      let last = offset;
      for (let k = 0; k < size.length; k++) last += (size[k]! - 1) * stride[k]!;
      if (offset < 0 || !Number.isSafeInteger(last) || last >= storage.numel) {
        throw new Error(`${view} reaches element ${last} of a ${storage.numel}-element storage`);
      }
    }
    if (n > storage.numel && bytes > MAX_BROADCAST_BYTES) {
      throw new Error(
        `${view} repeats the elements of its ${storage.numel}-element storage to ${n} elements (${formatBytes(bytes)}); a view larger than its storage may take at most ${formatBytes(MAX_BROADCAST_BYTES)}`,
      );
    }
    reserve?.(bytes);
    const src = storage.elements();
    const out = new ARRAYS[storage.dtype](n) as StorageArray;
    if (isContiguous(size, stride)) {
      out.set(src.subarray(offset, offset + n) as never);
    } else {
      // Walk the index space in C order with an odometer over the strides.
      const idx = new Array<number>(size.length).fill(0);
      let at = offset;
      for (let i = 0; i < n; i++) {
        out[i] = src[at]!;
        for (let k = size.length - 1; k >= 0; k--) {
          at += stride[k]!;
          if (++idx[k]! < size[k]!) break;
          at -= stride[k]! * size[k]!;
          idx[k] = 0;
        }
      }
    }
    if (storage.dtype === 'BF16') {
      const f = new Float32Array(n);
      const bits = new Uint32Array(f.buffer);
      for (let i = 0; i < n; i++) bits[i] = (out as Uint16Array)[i]! << 16;
      return hostTensor('F32', size, f);
    }
    if (storage.dtype === 'I16') return hostTensor('I32', size, Int32Array.from(out as Int16Array));
    return hostTensor(storage.dtype, size, out as never);
  }
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expect = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    if (size[k] !== 1 && stride[k] !== expect) return false;
    expect *= size[k]!;
  }
  return true;
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${what} must be a tuple of non-negative ints`);
  return v as number[];
}

/** torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata]) and the older _rebuild_tensor. */
export function rebuildTensor(args: unknown[]): TorchTensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) throw new Error('the first argument is not a storage');
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new Error('storage_offset must be a non-negative int');
  const sz = intList(size, 'size');
  const st = intList(stride, 'stride');
  if (sz.length !== st.length) throw new Error(`size [${sz}] and stride [${st}] differ in length`);
  return new TorchTensorRef(storage, offset as number, sz, st);
}

/** torch._utils._rebuild_parameter(data, requires_grad, hooks): a Parameter is its data here. */
export function rebuildParameter(args: unknown[]): unknown {
  if (!(args[0] instanceof TorchTensorRef)) throw new Error('the parameter data is not a tensor');
  return args[0];
}
