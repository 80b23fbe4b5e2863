// Convolutions whose input, output or gradients are larger than one storage binding (see
// kernels/large.ts): launch.ts runs them as one convolution per block of images, each operand bound
// as a window over the block's contiguous [nb, C, H, W] slice. Images are independent in forward
// and dgrad; wgrad sums over images, so blocks after the first write a scratch gradient that is
// added to the first in block order (deterministic).
import { rt } from '../define-kernel';
import { launchMap } from '../elementwise/map';
import { itemsPerBinding, windowRange } from '../large';
import type { ConvGeometry } from './geometry';

export { overBindingLimit } from '../large';

interface Ref {
  buffer: GPUBuffer;
  offset: number;
}

/** `count` contiguous elements (f32, or f16 when `f16`) of `r` rebound to a window of their own. */
export function windowRef(r: Ref, count: number, f16 = false): Ref {
  return windowRange(r.buffer, r.offset, count, f16 ? 2 : 4);
}

export interface ConvBatchChunk {
  /** The geometry of the block (N = its image count). */
  g: ConvGeometry;
  /** The block's slice of an input-shaped operand (x, dx) as a window. */
  x(r: Ref): Ref;
  /** The block's slice of an output-shaped operand (y, dy) as a window. */
  y(r: Ref): Ref;
}

/** Blocks of images whose input- and output-shaped slices each fit one binding. */
export function convBatchChunks(g: ConvGeometry, what: string): ConvBatchChunk[] {
  const xImage = g.C * g.H * g.W;
  const yImage = g.O * g.OH * g.OW;
  const eb = g.f16 ? 2 : 4;
  const nb = Math.min(itemsPerBinding(xImage * eb), itemsPerBinding(yImage * eb));
  if (nb < 1) {
    throw new Error(
      `conv ${what}: one image [1, ${g.C}, ${g.H}, ${g.W}] -> [1, ${g.O}, ${g.OH}, ${g.OW}] is over the ` +
        `${rt().bindingLimit}-byte storage binding limit; splitting one image is not implemented`,
    );
  }
  const chunks: ConvBatchChunk[] = [];
  for (let n0 = 0; n0 < g.N; n0 += nb) {
    const n = Math.min(nb, g.N - n0);
    chunks.push({
      g: { ...g, N: n },
      x: (r) => windowRange(r.buffer, r.offset + n0 * xImage, n * xImage, eb),
      y: (r) => windowRange(r.buffer, r.offset + n0 * yImage, n * yImage, eb),
    });
  }
  return chunks;
}

/** dw = Σ over blocks of images of wgrad(block): the first block writes dw, each later one a
 *  scratch gradient that is then added to dw. */
export function convWgradChunked(g: ConvGeometry, dy: Ref, x: Ref, dw: Ref, run: (g: ConvGeometry, dy: Ref, x: Ref, dw: Ref) => void): void {
  const wCount = g.O * (g.C / g.groups) * g.KH * g.KW;
  const chunks = convBatchChunks(g, 'wgrad');
  const dwWin = windowRef(dw, wCount);
  if (chunks.length === 1) {
    const c = chunks[0]!;
    run(c.g, c.y(dy), c.x(x), dwWin);
    return;
  }
  const runtime = rt();
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const part = runtime.pool.acquire(wCount * 4, usage, 'conv.wgrad.part');
  const sum = runtime.pool.acquire(wCount * 4, usage, 'conv.wgrad.sum');
  const view = (buffer: GPUBuffer, offset: number) => ({ buffer, offset, dtype: 'f32' as const, shape: [wCount], strides: [1] });
  chunks.forEach((c, k) => {
    if (k === 0) {
      run(c.g, c.y(dy), c.x(x), dwWin);
      return;
    }
    run(c.g, c.y(dy), c.x(x), { buffer: part, offset: 0 });
    launchMap({ name: 'add', expr: 'a + b', inputs: [view(dwWin.buffer, dwWin.offset), view(part, 0)], out: view(sum, 0) });
    runtime.copyBuffer(sum, 0, dwWin.buffer, dwWin.offset * 4, wCount * 4);
  });
  runtime.pool.release(part);
  runtime.pool.release(sum);
}
