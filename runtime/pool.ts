// Pooled GPU buffers. A buffer is keyed by (size class, usage). A released buffer goes to a
// pending list and becomes reusable only after the commands that used it were submitted: the
// queue then orders any later use after them. Sizes are rounded up to size classes (powers of two
// with quarter steps) so that tensors of slightly different shapes share buffers.
//
// Free lists are kept ordered by buffer creation order and `acquire` hands out the oldest free
// buffer of its class. The pool's choice therefore depends only on the *set* of free buffers, not
// on the order they were released in: a training step that starts with the same buffers live (its
// parameters and optimizer state) gets the same buffers for the same tensors every time, so the
// runtime's bind-group cache (keyed by buffer identity) hits from the second step on. (With a
// last-in-first-out stack, each step permuted which buffer each tensor got and ~1,200 bind groups
// were created per V-19-slim step.)

export interface PoolStats {
  /** Bytes held by live (acquired, not released) buffers. */
  liveBytes: number;
  /** The largest liveBytes seen since the last resetPeak(). */
  peakBytes: number;
  liveBuffers: number;
  /** Bytes held in free lists and pending lists, ready for reuse. */
  pooledBytes: number;
  /** Bytes of every GPUBuffer this pool created and has not destroyed. */
  allocatedBytes: number;
  created: number;
  reused: number;
}

export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 1024) return Math.ceil(b / 64) * 64 || 64;
  const p = 2 ** Math.floor(Math.log2(b));
  const quarter = p / 4;
  return Math.ceil(b / quarter) * quarter;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  private sizes = new WeakMap<GPUBuffer, number>();
  /** The largest storage buffer (a tensor's) acquired since the last resetPeak(), for
   *  out-of-memory reports. */
  private largest = { bytes: 0, label: '' };
  /** Creation order of the pool's buffers: free lists are sorted by it (descending, so that
   *  `pop()` returns the oldest). */
  private ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private stats: PoolStats = { liveBytes: 0, peakBytes: 0, liveBuffers: 0, pooledBytes: 0, allocatedBytes: 0, created: 0, reused: 0 };

  /** device.limits builds a new object per access in Dawn's bindings: read once. */
  private readonly maxBufferSize: number;

  constructor(private device: GPUDevice) {
    this.maxBufferSize = device.limits.maxBufferSize;
  }

  /** A buffer of at least `bytes`; `label` may be a function, called only when a buffer is made
   *  (tensor labels are built from the shape, which a reused buffer does not need). */
  acquire(bytes: number, usage: number, label: string | (() => string)): GPUBuffer {
    // A size class may round past maxBufferSize (near 4 GiB): such a buffer gets its exact size.
    const max = this.maxBufferSize;
    const size = Math.min(sizeClass(bytes), Math.max(max - (max % 16), Math.ceil(bytes / 4) * 4));
    const key = `${size}:${usage}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (buf) {
      this.stats.reused++;
      this.stats.pooledBytes -= size;
    } else {
      buf = this.device.createBuffer({ label: typeof label === 'string' ? label : label(), size, usage });
      this.sizes.set(buf, size);
      this.ids.set(buf, this.nextId++);
      this.stats.created++;
      this.stats.allocatedBytes += size;
    }
    this.stats.liveBytes += size;
    this.stats.liveBuffers++;
    if (size > this.largest.bytes && usage & GPUBufferUsage.STORAGE) this.largest = { bytes: size, label: typeof label === 'string' ? label : label() };
    if (this.stats.liveBytes > this.stats.peakBytes) this.stats.peakBytes = this.stats.liveBytes;
    return buf;
  }

  /** Return a buffer; it is reused only after the next submit (see `onSubmitted`). */
  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf) ?? buf.size;
    this.stats.liveBytes -= size;
    this.stats.liveBuffers--;
    this.stats.pooledBytes += size;
    this.pending.push(buf);
  }

  /** Called right after queue.submit(): pending buffers become reusable. */
  onSubmitted(): void {
    for (const buf of this.pending) {
      const key = `${this.sizes.get(buf) ?? buf.size}:${buf.usage}`;
      let list = this.free.get(key);
      if (!list) this.free.set(key, (list = []));
      // Sorted insert (descending id): binary search for the first entry with a smaller id.
      const id = this.idOf(buf);
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.idOf(list[mid]!) > id) lo = mid + 1;
        else hi = mid;
      }
      if (lo === list.length) list.push(buf);
      else list.splice(lo, 0, buf);
    }
    this.pending = [];
  }

  /** Buffers not created here (none in practice) sort as the newest. */
  private idOf(buf: GPUBuffer): number {
    return this.ids.get(buf) ?? Number.MAX_SAFE_INTEGER;
  }

  /** Destroy every free buffer (pending ones stay until submitted); `destroyLater` takes them
   *  instead when commands that use them still wait to be submitted. */
  trim(destroyLater?: (buffers: GPUBuffer[]) => void): void {
    const gone: GPUBuffer[] = [];
    for (const list of this.free.values()) {
      for (const buf of list) {
        const size = this.sizes.get(buf) ?? buf.size;
        this.stats.pooledBytes -= size;
        this.stats.allocatedBytes -= size;
        gone.push(buf);
      }
    }
    this.free.clear();
    if (destroyLater) destroyLater(gone);
    else for (const buf of gone) buf.destroy();
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }

  /** The largest storage buffer acquired since the last resetPeak() (its size class and label,
   *  e.g. `tensor[2,64,200,200]f32`). */
  largestAcquired(): { bytes: number; label: string } {
    return { ...this.largest };
  }

  resetPeak(): void {
    this.largest = { bytes: 0, label: '' };
    this.stats.peakBytes = this.stats.liveBytes;
  }
}
