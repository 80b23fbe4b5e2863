// Background compilation's half of the runtime: batches held back until the kernels they use have
// compiled, and the one ordered queue of submissions behind them (see runtime/README.md,
// "Background compilation"). While any batch waits, later batches, uploads and buffer
// destructions queue behind it, so the device sees everything in recording order.
import { GpuError } from './device';

/** Commands recorded for a batch that waits for background compilations; replayed into a fresh
 *  encoder when they are ready. */
export class Replay {
  private pass: GPUComputePassEncoder | undefined;
  constructor(readonly encoder: GPUCommandEncoder) {}
  computePass(): GPUComputePassEncoder {
    this.pass ??= this.encoder.beginComputePass({ label: 'cellgpu.pass' });
    return this.pass;
  }
  plain(): GPUCommandEncoder {
    this.pass?.end();
    this.pass = undefined;
    return this.encoder;
  }
}
export type DeferredCommand = (r: Replay) => void;

export class BackgroundSubmissions {
  /** The submissions waiting, in order, for kernels to compile; undefined when none is waiting. */
  queued: Promise<void> | undefined;
  private queuedJobs = 0;
  /** The current batch, once it dispatched a kernel that is still compiling: its commands before
   *  that point (finished), the commands since, and the compilations it waits for. */
  private head: GPUCommandBuffer | undefined;
  private commands: DeferredCommand[] | undefined;
  private waits = new Set<Promise<boolean>>();

  constructor(
    private readonly device: GPUDevice,
    /** Keeps a failure for the runtime's next flush or readback. */
    private readonly onError: (err: GpuError) => void,
  ) {}

  /** Whether the current batch is held (its commands are kept for replay). */
  get holding(): boolean {
    return this.commands !== undefined;
  }

  /** Start holding the current batch; `head` is what it recorded before (finished), if anything. */
  hold(head: GPUCommandBuffer | undefined): void {
    this.head = head;
    this.commands = [];
  }

  /** Keep a command of the held batch. */
  push(cmd: DeferredCommand): void {
    this.commands!.push(cmd);
  }

  /** The held batch waits for this compilation. */
  waitFor(ready: Promise<boolean>): void {
    this.waits.add(ready);
  }

  /** Run `job` after every submission queued before it (a failure is kept for the next flush). */
  enqueue(job: () => void | Promise<void>): void {
    this.queuedJobs++;
    const done = (this.queued ?? Promise.resolve())
      .then(job)
      .catch((err: unknown) => this.onError(err instanceof GpuError ? err : new GpuError(String((err as Error)?.message ?? err))))
      .finally(() => {
        if (--this.queuedJobs === 0) this.queued = undefined;
      });
    this.queued = done;
  }

  /** Submit the current batch (`finished`: its encoder's commands since it was held, if any) after
   *  the queued submissions and the compilations it waits for, with `uniforms` (a copy: the arena
   *  is reused by the next batch) uploaded first. */
  queueBatch(finished: GPUCommandBuffer | undefined, uniforms: { buffer: GPUBuffer; bytes: Uint8Array<ArrayBuffer> } | undefined): void {
    const head = this.head;
    const commands = this.commands ?? [];
    const waits = [...this.waits];
    this.head = undefined;
    this.commands = undefined;
    this.waits.clear();
    this.enqueue(async () => {
      // A batch whose kernel failed to compile is dropped (the error is already kept for the next
      // flush or readback, as a failed synchronous compile's is).
      if (waits.length && (await Promise.all(waits)).includes(false)) return;
      const buffers = [head, finished].filter((b) => b !== undefined);
      if (commands.length) {
        const r = new Replay(this.device.createCommandEncoder({ label: 'cellgpu.batch' }));
        for (const c of commands) c(r);
        buffers.push(r.plain().finish());
      }
      if (uniforms) this.device.queue.writeBuffer(uniforms.buffer, 0, uniforms.bytes);
      this.device.queue.submit(buffers);
    });
  }
}
