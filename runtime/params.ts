// The uniform block builder kernels pack their parameters with (kernels/define-kernel.ts).

/** Uniform block builder: fields are 4 bytes each, in declaration order, padded to 16 bytes. */
export class Params {
  private buf: ArrayBuffer;
  private u32: Uint32Array;
  private i32: Int32Array;
  private f32: Float32Array;
  private n = 0;
  constructor(capacityWords = 64) {
    this.buf = new ArrayBuffer(capacityWords * 4);
    this.u32 = new Uint32Array(this.buf);
    this.i32 = new Int32Array(this.buf);
    this.f32 = new Float32Array(this.buf);
  }
  private grow(): void {
    const next = new ArrayBuffer(this.buf.byteLength * 2);
    new Uint8Array(next).set(new Uint8Array(this.buf));
    this.buf = next;
    this.u32 = new Uint32Array(next);
    this.i32 = new Int32Array(next);
    this.f32 = new Float32Array(next);
  }
  u(...v: number[]): this {
    for (const x of v) {
      if (this.n >= this.u32.length) this.grow();
      this.u32[this.n++] = x >>> 0;
    }
    return this;
  }
  i(...v: number[]): this {
    for (const x of v) {
      if (this.n >= this.u32.length) this.grow();
      this.i32[this.n++] = x | 0;
    }
    return this;
  }
  f(...v: number[]): this {
    for (const x of v) {
      if (this.n >= this.u32.length) this.grow();
      this.f32[this.n++] = x;
    }
    return this;
  }
  /** Pad with zeros to the next multiple of `words` 4-byte words (vec4 alignment = 4). */
  align(words = 4): this {
    while (this.n % words) this.u(0);
    return this;
  }
  /** Fixed-length u32 array field of `len` words (pads with `fill`). */
  uArray(values: readonly number[], len: number, fill = 0): this {
    for (let i = 0; i < len; i++) this.u(i < values.length ? values[i]! : fill);
    return this;
  }
  iArray(values: readonly number[], len: number, fill = 0): this {
    for (let i = 0; i < len; i++) this.i(i < values.length ? values[i]! : fill);
    return this;
  }
  bytes(): Uint8Array {
    const words = Math.max(4, Math.ceil(this.n / 4) * 4);
    while (this.n < words) this.u(0);
    return new Uint8Array(this.buf, 0, words * 4);
  }
}
