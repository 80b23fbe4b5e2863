// The allow-list of Python globals a checkpoint may name: containers, torch tensor rebuilds and
// storage types, numpy array/dtype/scalar rebuilds, and `_codecs.encode` (how Python 3 writes
// bytes under protocol 2). Everything else is refused by the unpickler with the global's name.
import { NumpyArray, NumpyDType, ndarrayFromBuffer, numpyScalar } from './numpy-array';
import type { GlobalTable, PyGlobal } from './pickle';
import { STORAGE_TYPES, rebuildParameter, rebuildTensor, type StorageDType } from './torch-tensor';

/** A torch.*Storage class; only meaningful inside a persistent id. */
export interface StorageTypeGlobal extends PyGlobal {
  readonly storageDType: StorageDType;
}

export function isStorageType(v: unknown): v is StorageTypeGlobal {
  return typeof v === 'object' && v !== null && typeof (v as StorageTypeGlobal).storageDType === 'string';
}

function fn(qualname: string, call: (args: unknown[]) => unknown): PyGlobal {
  return { qualname, call };
}

function orderedDict(args: unknown[]): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  const items = args[0];
  if (items === undefined || items === null) return m;
  if (items instanceof Map) return new Map(items);
  if (!Array.isArray(items)) throw new Error('expects a list of (key, value) pairs');
  for (const pair of items) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new Error('expects (key, value) pairs');
    m.set(pair[0], pair[1]);
  }
  return m;
}

function toSet(args: unknown[]): Set<unknown> {
  const items = args[0] ?? [];
  if (!Array.isArray(items) && !(items instanceof Set)) throw new Error('expects a list');
  return new Set(items);
}

function codecsEncode(args: unknown[]): Uint8Array {
  const [text, encoding = 'utf-8'] = args;
  if (typeof text !== 'string' || typeof encoding !== 'string') throw new Error('expects (str, encoding)');
  const enc = encoding.toLowerCase().replace(/[-_]/g, '');
  if (enc === 'latin1' || enc === 'iso88591') return Uint8Array.from(Buffer.from(text, 'latin1'));
  if (enc === 'utf8') return new TextEncoder().encode(text);
  throw new Error(`encoding "${encoding}" is not supported`);
}

function build(): GlobalTable {
  const list: PyGlobal[] = [
    fn('collections.OrderedDict', orderedDict),
    fn('builtins.set', toSet),
    fn('builtins.frozenset', toSet),
    fn('builtins.slice', ([start, stop, step]) => ({ start, stop, step })),
    fn('_codecs.encode', codecsEncode),
    fn('torch._utils._rebuild_tensor', rebuildTensor),
    fn('torch._utils._rebuild_tensor_v2', rebuildTensor),
    fn('torch._utils._rebuild_parameter', rebuildParameter),
    fn('torch._utils._rebuild_parameter_with_state', rebuildParameter),
    { qualname: 'numpy.ndarray' },
    fn('numpy.dtype', ([code]) => {
      if (typeof code !== 'string') throw new Error('expects a dtype code string');
      return new NumpyDType(code);
    }),
  ];
  // numpy moved `core` to `_core` in 2.0; pickles name whichever wrote them.
  for (const core of ['numpy.core', 'numpy._core']) {
    list.push(
      fn(`${core}.multiarray._reconstruct`, () => new NumpyArray()),
      fn(`${core}.multiarray.scalar`, numpyScalar),
      fn(`${core}.numeric._frombuffer`, ndarrayFromBuffer),
    );
  }
  for (const [name, storageDType] of Object.entries(STORAGE_TYPES)) {
    list.push({ qualname: `torch.${name}`, storageDType } as StorageTypeGlobal);
  }
  return new Map(list.map((g) => [g.qualname, g]));
}

export const ALLOWED_GLOBALS: GlobalTable = build();
