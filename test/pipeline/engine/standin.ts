// A tiny stand-in for CenterMask with the same `losses` / `inference` interface, for trainer and
// predictor tests (test code only). Its parameters sit in a Detectron2-like tree: a GroupNorm
// ('norm.weight', 'norm.bias') and a head ('head.weight', 'head.bias'), so that parameter-group
// rules have something to act on.
import { Module } from '../../../engine/nn/module';
import { fromArray, full, type Tensor } from '../../../engine/tensor';
import { add, addScalar, mul, mulScalar, square } from '../../../engine/ops/elementwise';
import { mean, sum } from '../../../engine/ops/reduce';
import { reshape } from '../../../engine/ops/view';
import { GroupNorm } from '../../../models/layers';
import type { GtInstances, ImageInput, Instances } from '../../../pipeline/engine/model';

class Head extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor() {
    super();
    this.weight = this.registerParameter('weight', fromArray([0.3, -0.2, 0.1], [3]));
    this.bias = this.registerParameter('bias', full([1], 0.05));
  }
}

export class StandInModel extends Module {
  readonly norm: GroupNorm;
  readonly head: Head;
  calls = 0;
  /** losses() multiplies every loss by NaN on this call index (0-based). */
  nanAtCall = -1;
  /** Instances returned by inference: pixels of channel 0 above this are the (single) object. */
  threshold = 128;
  constructor() {
    super();
    this.norm = this.registerModule('norm', new GroupNorm(1, 3));
    this.head = this.registerModule('head', new Head());
  }

  async losses(batch: ImageInput[], gts: GtInstances[]): Promise<Record<string, Tensor>> {
    const call = this.calls++;
    let cls: Tensor | null = null;
    let loc: Tensor | null = null;
    let msk: Tensor | null = null;
    batch.forEach((im, i) => {
      const gt = gts[i]!;
      const x = mulScalar(fromArray(im.image, [1, 3, im.height, im.width]), 1 / 255);
      const z = add(mul(this.norm.forward(x), reshape(this.head.weight, [1, 3, 1, 1])), this.head.bias);
      const n = gt.classes.length;
      const c = mean(square(addScalar(z, -n / 10)));
      let meanW = 0;
      for (let k = 0; k < n; k++) meanW += (gt.boxes[4 * k + 2]! - gt.boxes[4 * k]!) / im.width / Math.max(1, n);
      const l = square(addScalar(sum(this.head.bias), -meanW));
      const polys = (gt.polygons ?? []).reduce((t, p) => t + p.length, 0);
      const m = square(addScalar(sum(this.head.weight), -polys / 10));
      cls = cls ? add(cls, c) : c;
      loc = loc ? add(loc, l) : l;
      msk = msk ? add(msk, m) : m;
    });
    const scale = call === this.nanAtCall ? NaN : 1 / batch.length;
    return {
      loss_fcos_cls: mulScalar(cls!, scale),
      loss_fcos_loc: mulScalar(reshape(loc!, []), scale),
      loss_mask: mulScalar(reshape(msk!, []), scale),
    };
  }

  /** One instance per image: channel-0 pixels above `threshold`, mapped to the original size by
   *  nearest neighbour; box = the mask's pixel extent plus 0.5 px; score 0.9, mask score 0.8, class 1. */
  async inference(batch: ImageInput[]): Promise<Instances[]> {
    return batch.map((im) => {
      const W = im.origWidth;
      const H = im.origHeight;
      const mask = new Uint8Array(W * H);
      let x0 = W;
      let y0 = H;
      let x1 = -1;
      let y1 = -1;
      for (let y = 0; y < H; y++) {
        const sy = Math.min(im.height - 1, Math.floor((y * im.height) / H));
        for (let x = 0; x < W; x++) {
          const sx = Math.min(im.width - 1, Math.floor((x * im.width) / W));
          if (im.image[sy * im.width + sx]! > this.threshold) {
            mask[y * W + x] = 1;
            x0 = Math.min(x0, x);
            y0 = Math.min(y0, y);
            x1 = Math.max(x1, x);
            y1 = Math.max(y1, y);
          }
        }
      }
      if (x1 < 0) return { boxes: new Float32Array(0), scores: new Float32Array(0), classes: new Int32Array(0), maskScores: new Float32Array(0), masks: [] };
      return {
        boxes: Float32Array.from([x0 - 0.5, y0 - 0.5, x1 + 1.5, y1 + 1.5]), // a box around the mask's pixels, with a margin
        scores: Float32Array.from([0.9]),
        classes: Int32Array.from([1]),
        maskScores: Float32Array.from([0.8]),
        masks: [mask],
      };
    });
  }
}
