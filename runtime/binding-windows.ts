// Binding windows: handles that stand for a byte range of a buffer, so that kernels written for
// whole buffers run on slices of a tensor larger than one storage binding (kernels/large.ts).
// A handle is a plain object shaped like a GPUBuffer; the runtime resolves it wherever it binds,
// copies, clears, reads or writes. Handles are interned per (buffer, offset, size), so the bind
// groups of a window are cached like those of any other buffer.

/** A byte range of a buffer bound as one storage binding. */
export interface BufferWindow {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export class BindingWindows {
  /** handle -> the window it binds. */
  private windows = new WeakMap<GPUBuffer, BufferWindow>();
  /** Per buffer, the handles made so far, by `offset:size`. */
  private handles = new WeakMap<GPUBuffer, Map<string, GPUBuffer>>();

  constructor(private readonly device: GPUDevice) {}

  /** A handle that binds `byteSize` bytes of `buffer` from `byteOffset` (a multiple of
   *  minStorageBufferOffsetAlignment); a window of a window is a window of the underlying buffer. */
  window(buffer: GPUBuffer, byteOffset: number, byteSize: number): GPUBuffer {
    const inner = this.windows.get(buffer);
    if (inner) return this.window(inner.buffer, inner.offset + byteOffset, byteSize);
    if (byteOffset === 0 && byteSize === buffer.size) return buffer;
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    if (byteOffset % align !== 0) throw new Error(`bindingWindow: offset ${byteOffset} is not a multiple of ${align}`);
    if (byteOffset + byteSize > buffer.size || byteSize <= 0 || byteSize % 4 !== 0) {
      throw new Error(`bindingWindow: [${byteOffset}, +${byteSize}) does not fit a ${buffer.size}-byte buffer`);
    }
    let handles = this.handles.get(buffer);
    if (!handles) this.handles.set(buffer, (handles = new Map()));
    const key = `${byteOffset}:${byteSize}`;
    let h = handles.get(key);
    if (!h) {
      h = { size: byteSize, usage: buffer.usage, label: `${buffer.label}@${byteOffset}+${byteSize}` } as unknown as GPUBuffer;
      this.windows.set(h, { buffer, offset: byteOffset, size: byteSize });
      handles.set(key, h);
    }
    return h;
  }

  /** The window `b` stands for, or undefined when it is a real buffer. */
  get(b: GPUBuffer): BufferWindow | undefined {
    return this.windows.get(b);
  }

  /** The buffer, offset and size a (possibly window) handle binds. */
  resolve(b: GPUBuffer): BufferWindow {
    return this.windows.get(b) ?? { buffer: b, offset: 0, size: b.size };
  }
}
