// Several devices in one process (data parallelism): `openDevices(n)` opens them once and reuses
// them; `withDevice` (runtime.ts) makes one of them current while ops record.
import { adapterSlug, listDawnAdapters, openGpu, type DeviceOptions } from './device';
import { init, Runtime } from './runtime';

const devices: Runtime[] = [];

/**
 * The process-wide runtime plus `n - 1` more devices (opened once and reused by later calls), each
 * its own GPUDevice, queue and buffer pool. Device 0 is `init()`'s. In Node, when Dawn lists at
 * least n - 1 other adapters of device 0's backend with distinct names (and, beside a GPU, no CPU
 * rasterizer), device i opens the i-th of them; otherwise every device is another GPUDevice on
 * device 0's adapter. Identical GPUs share a name and cannot be told apart (Dawn opens adapters by
 * name), so N identical GPUs give N devices on the first.
 */
export async function openDevices(n: number, options: DeviceOptions = {}): Promise<readonly Runtime[]> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`openDevices: ${n} devices; need a positive integer`);
  const first = await init(options);
  if (devices.length === 0) devices.push(first);
  if (devices.length >= n) return devices.slice(0, n);
  const others = await otherAdapters(first);
  while (devices.length < n) {
    const other = others.length >= n - 1 ? others[devices.length - 1] : undefined;
    const flags = other ? [...(options.dawnFlags ?? []), `adapter=${other.name}`, `backend=${other.backend}`] : options.dawnFlags;
    devices.push(new Runtime(await openGpu({ ...options, dawnFlags: flags })));
  }
  return devices.slice(0, n);
}

/** The adapters Dawn lists on device 0's backend, other than device 0's, one per distinct name;
 *  CPU rasterizers only when device 0 is one (a GPU's data-parallel partner must be a GPU). */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|warp|basic render/i;

async function otherAdapters(first: Runtime): Promise<{ backend: string; name: string }[]> {
  if (first.gpu.runtime !== 'dawn.node') return [];
  const all = await listDawnAdapters();
  const own = all.find((a) => adapterSlug(a.name) === first.gpu.adapter.device);
  if (!own) return [];
  const names = new Set<string>([own.name]);
  const out: { backend: string; name: string }[] = [];
  for (const a of all) {
    if (a.backend !== own.backend || names.has(a.name) || (SOFTWARE.test(a.name) && !SOFTWARE.test(own.name))) continue;
    names.add(a.name);
    out.push(a);
  }
  return out;
}
