// The per-batch uniform arena: every dispatch's parameter block is packed into one host array and
// uploaded with one writeBuffer at submission, bound through a dynamic offset (so a bind group
// does not depend on where a dispatch's parameters landed, and is reused).
import type { BufferPool } from './pool';

export const UNIFORM_ARENA_BYTES = 64 * 1024;

/** Where one dispatch's parameters landed. */
export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export class UniformArena {
  private cpu = new Uint8Array(UNIFORM_ARENA_BYTES);
  private gpu: GPUBuffer | undefined;
  private used = 0;

  constructor(
    private readonly pool: BufferPool,
    private readonly align: number,
  ) {}

  /** Place `data` in this batch's arena; undefined when it is full (submit the batch, then retry). */
  place(data: ArrayBufferView): UniformSlot | undefined {
    const size = Math.ceil(data.byteLength / 16) * 16;
    if (size > UNIFORM_ARENA_BYTES) throw new Error(`uniform block of ${data.byteLength} bytes exceeds the arena`);
    const offset = Math.ceil(this.used / this.align) * this.align;
    if (offset + size > UNIFORM_ARENA_BYTES) return undefined;
    this.gpu ??= this.pool.acquire(UNIFORM_ARENA_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'cellgpu.uniforms');
    this.cpu.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    this.used = offset + size;
    return { buffer: this.gpu, offset, size };
  }

  /** Upload this batch's parameters now (right before its submit). */
  upload(queue: GPUQueue): void {
    if (this.gpu) queue.writeBuffer(this.gpu, 0, this.cpu, 0, this.used);
  }

  /** This batch's arena and a copy of its parameters, for a submission made later. */
  snapshot(): { buffer: GPUBuffer; bytes: Uint8Array<ArrayBuffer> } | undefined {
    return this.gpu ? { buffer: this.gpu, bytes: this.cpu.slice(0, this.used) } : undefined;
  }

  /** The batch was submitted (or queued): its arena goes back to the pool, the next batch starts a new one. */
  submitted(): void {
    if (this.gpu) this.pool.release(this.gpu);
    this.gpu = undefined;
    this.used = 0;
  }
}
