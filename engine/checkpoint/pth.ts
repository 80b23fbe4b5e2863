// PyTorch .pth/.pt files written by torch.save, in both layouts:
// - zip (PyTorch >= 1.6): `<prefix>/data.pkl` is the pickle; each tensor storage is the entry
//   `<prefix>/data/<key>`, named by the persistent id ('storage', StorageType, key, location, numel).
// - legacy (PyTorch < 1.6, or _use_new_zipfile_serialization=False): back-to-back pickles of the
//   magic number, protocol version, sys info, the object (persistent id adds view_metadata), the
//   sorted storage keys; then per key an int64 element count and the raw bytes.
import { unzipSync } from 'fflate';
import { InputError } from '../../runtime/errors';
import { ALLOWED_GLOBALS, isStorageType } from './allowed-globals';
import { describeValue, formatBytes, MAX_ZIP_RATIO, MAX_ZIP_TOTAL_BYTES, ZIP_RATIO_FREE_BYTES } from './limits';
import { unpickle } from './pickle';
import { toStateDict, type StateDict } from './state-dict';
import { STORAGE_ITEM_BYTES, TorchStorage } from './torch-tensor';

export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** Parses a storage persistent id tuple; `legacy` ids carry view_metadata as a sixth item. */
function storageFromPid(pid: unknown, file: string): { key: string; storage: TorchStorage; view: unknown } {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw new InputError(file, 'persistent id', `expected ('storage', type, key, location, numel), got ${describeValue(pid)}`);
  }
  const [, type, key, , n, view] = pid;
  if (!isStorageType(type)) throw new InputError(file, 'persistent id', 'storage type is not a torch.*Storage class');
  if (typeof key !== 'string' || !Number.isSafeInteger(n) || (n as number) < 0) {
    throw new InputError(file, 'persistent id', `bad storage key/size ${describeValue(key)}/${describeValue(n)}`);
  }
  return { key, storage: new TorchStorage(key, type.storageDType, n as number), view };
}

/**
 * The zip's entries, inflated only after the central directory's declared sizes passed the limits
 * (limits.ts): at most MAX_ZIP_TOTAL_BYTES in all, and a deflated entry at most MAX_ZIP_RATIO
 * times its compressed size unless it is small. The inflater writes into a buffer of the declared
 * size, so a declared size that lies cannot make it allocate more.
 */
function unzipBounded(bytes: Uint8Array, file: string): Record<string, Uint8Array> {
  let total = 0;
  try {
    return unzipSync(bytes, {
      filter: ({ name, size, originalSize, compression }) => {
        total += originalSize;
        if (total > MAX_ZIP_TOTAL_BYTES) {
          throw new InputError(file, `zip entry ${name}`, `the entries declare more than ${formatBytes(MAX_ZIP_TOTAL_BYTES)} uncompressed (limit for a checkpoint)`);
        }
        if (compression !== 0 && originalSize > ZIP_RATIO_FREE_BYTES && originalSize > MAX_ZIP_RATIO * size) {
          throw new InputError(
            file,
            `zip entry ${name}`,
            `declares ${formatBytes(originalSize)} uncompressed from ${formatBytes(size)} compressed, more than ${MAX_ZIP_RATIO}x (a zip bomb? torch.save stores entries uncompressed)`,
          );
        }
        return true;
      },
    });
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(file, 'zip', `cannot read the zip archive: ${(err as Error).message}`);
  }
}

export function readTorchZip(bytes: Uint8Array, file: string): StateDict {
  const entries = unzipBounded(bytes, file);
  const sourceBytes = Object.values(entries).reduce((a, e) => a + e.byteLength, 0);
  const pkls = Object.keys(entries).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    const hint = Object.keys(entries).some((n) => n.endsWith('constants.pkl')) ? ' (a TorchScript archive? export its state_dict instead)' : '';
    throw new InputError(file, 'zip', `expected exactly one <name>/data.pkl entry, found ${pkls.length}${hint}`);
  }
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const order = entries[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== 'little') {
    throw new InputError(file, `${prefix}byteorder`, 'big-endian checkpoints are not supported');
  }
  const storages = new Map<string, TorchStorage>();
  const value = unpickle(entries[pkls[0]!]!, 0, {
    file,
    globals: ALLOWED_GLOBALS,
    persistentLoad: (pid) => {
      const { key, storage } = storageFromPid(pid, file);
      const seen = storages.get(key);
      if (seen) return seen;
      const data = entries[`${prefix}data/${key}`];
      if (!data) throw new InputError(file, `${prefix}data/${key}`, 'storage entry is missing from the archive');
      try {
        storage.setBytes(data);
      } catch (err) {
        throw new InputError(file, `${prefix}data/${key}`, (err as Error).message);
      }
      storages.set(key, storage);
      return storage;
    },
  }).value;
  return toStateDict(value, file, { sourceBytes });
}

export function readTorchLegacy(bytes: Uint8Array, file: string): StateDict {
  const plain = { file, globals: ALLOWED_GLOBALS };
  let at = 0;
  const next = (opts: Parameters<typeof unpickle>[2] = plain): unknown => {
    const r = unpickle(bytes, at, opts);
    at = r.end;
    return r.value;
  };
  if (next() !== LEGACY_MAGIC) throw new InputError(file, 'offset 0', 'not a legacy torch.save file (magic number missing)');
  const version = next();
  if (version !== LEGACY_PROTOCOL_VERSION) throw new InputError(file, `offset ${at}`, `unsupported legacy protocol version ${describeValue(version)}`);
  const sysInfo = next();
  if (sysInfo instanceof Map && sysInfo.get('little_endian') === false) {
    throw new InputError(file, 'sys_info', 'big-endian checkpoints are not supported');
  }

  const storages = new Map<string, TorchStorage>();
  const value = next({
    ...plain,
    persistentLoad: (pid) => {
      const { key, storage, view } = storageFromPid(pid, file);
      let root = storages.get(key);
      if (!root) storages.set(key, (root = storage));
      if (view === null || view === undefined) return root;
      // view_metadata = (view_key, offset, view_size), in elements of the root storage.
      if (!Array.isArray(view) || view.length !== 3) throw new InputError(file, 'persistent id', 'bad view_metadata');
      const [viewKey, offset, size] = view as [unknown, unknown, unknown];
      if (typeof viewKey !== 'string' || !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || (offset as number) < 0 || (size as number) < 0) {
        throw new InputError(file, 'persistent id', 'bad view_metadata: expected (key, offset, size) with non-negative ints');
      }
      let v = storages.get(viewKey);
      if (!v) storages.set(viewKey, (v = root.view(viewKey, offset as number, size as number)));
      return v;
    },
  });
  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new InputError(file, `offset ${at}`, 'expected the list of storage keys after the pickled object');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys as string[]) {
    const storage = storages.get(key);
    if (!storage) throw new InputError(file, `storage ${key}`, 'listed in the file but never referenced by a tensor');
    if (at + 8 > bytes.byteLength) throw new InputError(file, `storage ${key}`, `truncated file: element count expected at offset ${at}`);
    const n = Number(view.getBigInt64(at, true));
    at += 8;
    if (n !== storage.numel) throw new InputError(file, `storage ${key}`, `holds ${n} elements, but the pickle says ${storage.numel}`);
    const len = n * STORAGE_ITEM_BYTES[storage.dtype];
    if (at + len > bytes.byteLength) throw new InputError(file, `storage ${key}`, `truncated file: ${len} bytes expected at offset ${at}, file has ${bytes.byteLength}`);
    storage.setBytes(bytes.subarray(at, at + len));
    at += len;
  }
  for (const s of storages.values()) {
    let has: boolean;
    try {
      has = s.bytes() !== undefined;
    } catch (err) {
      throw new InputError(file, `storage ${s.key}`, (err as Error).message); // a view past its storage's end
    }
    if (!has) throw new InputError(file, `storage ${s.key}`, 'referenced by a tensor but its data is not in the file');
  }
  return toStateDict(value, file, { sourceBytes: bytes.byteLength });
}

/** A .pth in either layout. */
export function readPth(bytes: Uint8Array, file: string): StateDict {
  return isZip(bytes) ? readTorchZip(bytes, file) : readTorchLegacy(bytes, file);
}
