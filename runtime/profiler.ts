// A per-kernel profiler for everything the runtime records, in the spirit of torch.profiler:
// per kernel name, how many dispatches, the host time spent recording them in Runtime.dispatch,
// and, where the device has `timestamp-query`, the device time of each dispatch. Plus the step's
// counters: dispatches, submits, readbacks, pipelines compiled, bind groups created.
//
// Device time needs one compute pass per dispatch (timestamps are written at pass boundaries), so
// profiling perturbs what it measures a little: it is a tool to find where time goes, and the
// benchmarks time the unprofiled path.
/** The runtime counters a report is the difference of (a subset of RuntimeStats). */
export interface ProfileCounters {
  dispatches: number;
  submits: number;
  readbacks: number;
  pipelines: number;
  bindGroups: number;
}

/** One row of a profile: a kernel (its name without the variant) or the whole region. */
export interface ProfileRow {
  name: string;
  calls: number;
  /** Host milliseconds spent in Runtime.dispatch for these calls (pipeline and bind-group lookups,
   *  uniform packing, encoding). The op code above it (shapes, autograd) is in `hostMs` of the
   *  report, not here. */
  dispatchMs: number;
  /** Device milliseconds summed over the calls; undefined without timestamp queries. */
  deviceMs?: number;
}

export interface ProfileReport {
  /** Wall-clock milliseconds of the profiled region, including its waits. */
  wallMs: number;
  /** Host milliseconds of the region not spent waiting on the device (wall minus awaited reads). */
  hostMs: number;
  /** Total device milliseconds over all dispatches (timestamps), or undefined. */
  deviceMs?: number;
  dispatches: number;
  submits: number;
  readbacks: number;
  pipelinesCompiled: number;
  bindGroupsCreated: number;
  /** Per kernel, most device time first (most dispatch time without timestamps). */
  kernels: ProfileRow[];
}

/** A batch's timestamps, resolved into `read` by the batch's own commands; mapped after submit. */
interface PendingBatch {
  names: string[];
  read: GPUBuffer;
  /** Destroyed once `read` is mapped. */
  garbage: (GPUBuffer | GPUQuerySet)[];
}

const QUERIES_PER_SET = 2 * 128;

/** Collects one profiled region; the runtime calls it from dispatch() and flush(). */
export class DispatchProfiler {
  private rows = new Map<string, ProfileRow>();
  private querySet: GPUQuerySet | undefined;
  private batchNames: string[] = [];
  private pending: PendingBatch[] = [];
  private reads: Promise<void>[] = [];
  private readonly devicePerKernel = new Map<string, number>();
  waitMs = 0;

  constructor(
    private readonly device: GPUDevice,
    readonly timestamps: boolean,
  ) {}

  private row(key: string): ProfileRow {
    const name = kernelName(key);
    let r = this.rows.get(name);
    if (!r) this.rows.set(name, (r = { name, calls: 0, dispatchMs: 0 }));
    return r;
  }

  /** Timestamp writes for the next dispatch's pass, or undefined when the set is full (the caller
   *  then flushes and asks again) or timestamps are off. */
  timestampWrites(key: string): GPUComputePassTimestampWrites | undefined {
    if (!this.timestamps) return undefined;
    if (this.batchNames.length * 2 >= QUERIES_PER_SET) return undefined;
    this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET, label: 'cellgpu.profile' });
    const i = this.batchNames.length * 2;
    this.batchNames.push(key);
    return { querySet: this.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 };
  }

  get batchFull(): boolean {
    return this.timestamps && this.batchNames.length * 2 >= QUERIES_PER_SET;
  }

  dispatched(key: string, hostMs: number): void {
    const r = this.row(key);
    r.calls++;
    r.dispatchMs += hostMs;
  }

  /** Before the batch's encoder is finished: resolve this batch's timestamps into a readable buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    if (!this.querySet || this.batchNames.length === 0) return;
    const n = this.batchNames.length * 2;
    const resolveBuf = this.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC, label: 'cellgpu.profile.resolve' });
    const read = this.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'cellgpu.profile.read' });
    encoder.resolveQuerySet(this.querySet, 0, n, resolveBuf, 0);
    encoder.copyBufferToBuffer(resolveBuf, 0, read, 0, n * 8);
    // A fresh query set for the next batch: this one is in flight until the submit completes.
    this.pending.push({ names: this.batchNames, read, garbage: [read, resolveBuf, this.querySet] });
    this.batchNames = [];
    this.querySet = undefined;
  }

  /** After a submit: start reading the timestamps of the batches resolve() saw. */
  submitted(): void {
    for (const p of this.pending.splice(0)) this.reads.push(this.collect(p));
  }

  private async collect(p: PendingBatch): Promise<void> {
    try {
      await p.read.mapAsync(GPUMapMode.READ);
      const t = new BigInt64Array(p.read.getMappedRange().slice(0));
      p.read.unmap();
      for (let j = 0; j < p.names.length; j++) {
        const ms = Number(t[2 * j + 1]! - t[2 * j]!) / 1e6;
        const name = kernelName(p.names[j]!);
        this.devicePerKernel.set(name, (this.devicePerKernel.get(name) ?? 0) + Math.max(0, ms));
      }
    } finally {
      for (const g of p.garbage) g.destroy();
    }
  }

  /** Wait for every timestamp readback and build the report. */
  async finish(wallMs: number, before: ProfileCounters, after: ProfileCounters): Promise<ProfileReport> {
    const t0 = performance.now();
    await Promise.all(this.reads);
    this.waitMs += performance.now() - t0;
    const kernels = [...this.rows.values()].map((r) => (this.timestamps ? { ...r, deviceMs: this.devicePerKernel.get(r.name) ?? 0 } : r));
    kernels.sort((a, b) => (b.deviceMs ?? 0) - (a.deviceMs ?? 0) || b.dispatchMs - a.dispatchMs);
    const deviceMs = this.timestamps ? kernels.reduce((s, r) => s + (r.deviceMs ?? 0), 0) : undefined;
    return {
      wallMs,
      hostMs: Math.max(0, wallMs - this.waitMs),
      ...(deviceMs === undefined ? {} : { deviceMs }),
      dispatches: after.dispatches - before.dispatches,
      submits: after.submits - before.submits,
      readbacks: after.readbacks - before.readbacks,
      pipelinesCompiled: after.pipelines - before.pipelines,
      bindGroupsCreated: after.bindGroups - before.bindGroups,
      kernels,
    };
  }
}

/** A kernel's name: its pipeline key without the variant, e.g. `conv_packed_fwd(tm=16)` → `conv_packed_fwd`. */
export function kernelName(key: string): string {
  const i = key.indexOf('(');
  return i < 0 ? key : key.slice(0, i);
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const num = (v: number | undefined, digits = 2) => (v === undefined ? '-' : v.toFixed(digits));

/** A table like torch.profiler's key_averages().table(): the top `top` kernels, then totals. */
export function formatProfile(r: ProfileReport, top = 20): string {
  const name = Math.min(48, Math.max(8, ...r.kernels.slice(0, top).map((k) => k.name.length)));
  const lines = [
    `${pad('kernel', name)}  ${'calls'.padStart(7)}  ${'device ms'.padStart(10)}  ${'device %'.padStart(8)}  ${'avg µs'.padStart(9)}  ${'dispatch ms'.padStart(11)}`,
  ];
  for (const k of r.kernels.slice(0, top)) {
    const pct = r.deviceMs ? (100 * (k.deviceMs ?? 0)) / r.deviceMs : undefined;
    const avg = k.deviceMs === undefined ? undefined : (1000 * k.deviceMs) / k.calls;
    lines.push(`${pad(k.name.slice(0, name), name)}  ${String(k.calls).padStart(7)}  ${num(k.deviceMs).padStart(10)}  ${num(pct, 1).padStart(8)}  ${num(avg, 1).padStart(9)}  ${num(k.dispatchMs).padStart(11)}`);
  }
  if (r.kernels.length > top) lines.push(`… ${r.kernels.length - top} more kernels`);
  lines.push(
    `wall ${num(r.wallMs, 1)} ms, host ${num(r.hostMs, 1)} ms, device ${num(r.deviceMs, 1)} ms; ` +
      `${r.dispatches} dispatches (${num(r.dispatches ? (1000 * r.hostMs) / r.dispatches : undefined, 1)} µs host each), ${r.submits} submits, ` +
      `${r.readbacks} readbacks, ${r.pipelinesCompiled} pipelines compiled, ${r.bindGroupsCreated} bind groups created`,
  );
  return lines.join('\n');
}
