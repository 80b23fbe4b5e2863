// Multi-tensor ("foreach") optimizer steps against the one-kernel-per-parameter loop: the same
// parameters, gradients and options through both, compared bit for bit (f32 bits of parameters and
// state) after several steps. Parameters are odd-sized (1 to over a workgroup, so slots start on
// workgroup boundaries with ragged tails), more than one dispatch holds (chunking), two of them
// views at offsets into one shared storage (their writable bindings must not share a dispatch),
// one skipped on some steps (its step count, hence AdamW's bias correction, lags the others), a
// non-contiguous gradient, an lr changed every step, and global-norm gradient clipping before the
// step. The multi-tensor path must also use fewer dispatches. The same for gradient clipping's
// multi-tensor partial norms and scaling (several norm types, a gradient over two norm chunks).
import { beforeAll, describe, expect, it } from 'vitest';
import { fromArray, init, rt, type Tensor } from '../../../engine';
import { AdamW, type AdamWOptions } from '../../../engine/optim/adamw';
import { clipGradNorm, gradNorm } from '../../../engine/optim/clip';
import { SGD, type SgdOptions } from '../../../engine/optim/sgd';
import { slotsPerDispatch } from '../../../kernels/optim/slots';
import { Rng, testSeed } from '../../util';

beforeAll(async () => {
  await init();
});

const SIZES = [1, 7, 255, 256, 257, 3, 1000, 13, 64, 5, 300];
/** Parameters 4 and 5 are views of one storage (at elements 0 and 257); 9's gradient is strided
 *  (or, where clipping needs contiguous gradients, a view at an offset). */
const SHARED = [4, 5];
const STRIDED = 9;

type AnyOpt = SGD | AdamW;

function makeParams(values: Float32Array[]): { params: Tensor[]; owned: Tensor[] } {
  const owned: Tensor[] = [];
  const params = values.map((v, i) => {
    if (i === SHARED[1]) return null;
    const t = fromArray(v, [v.length]);
    owned.push(t);
    return t;
  });
  // Replace the pair by views into one storage, at offsets 0 and SIZES[4].
  const a = values[SHARED[0]!]!;
  const b = values[SHARED[1]!]!;
  const both = new Float32Array(a.length + b.length);
  both.set(a);
  both.set(b, a.length);
  const base = fromArray(both);
  owned.push(base);
  params[SHARED[0]!] = base.viewAs([a.length], [1], 0);
  params[SHARED[1]!] = base.viewAs([b.length], [1], a.length);
  const out = params as Tensor[];
  for (const p of out) p.requiresGrad = true;
  return { params: out, owned: [...owned, params[SHARED[0]!]!, params[SHARED[1]!]!] };
}

function setGrads(params: Tensor[], grads: Float32Array[], skip: number | null, contiguous: boolean): Tensor[] {
  const extra: Tensor[] = [];
  params.forEach((p, i) => {
    p.grad?.dispose();
    p.grad = null;
    if (i === skip) return;
    const g = grads[i]!;
    if (i === STRIDED && contiguous) {
      // A contiguous view at element 3 of a longer storage (clipping needs contiguous gradients).
      const wide = new Float32Array(g.length + 5);
      wide.set(g, 3);
      const src = fromArray(wide);
      extra.push(src);
      p.grad = src.viewAs([g.length], [1], 3);
    } else if (i === STRIDED) {
      // Every other element of a twice-as-long storage: not contiguous, the optimizer copies it.
      const wide = new Float32Array(2 * g.length);
      g.forEach((x, j) => (wide[2 * j] = x));
      const src = fromArray(wide);
      extra.push(src);
      p.grad = src.viewAs([g.length], [2], 0);
    } else {
      p.grad = fromArray(g, [g.length]);
    }
  });
  return extra;
}

async function run(make: (params: Tensor[]) => AnyOpt, values: Float32Array[], steps: Float32Array[][], clip: boolean): Promise<{ bits: Uint32Array[]; state: Uint32Array[]; dispatches: number }> {
  const { params, owned } = makeParams(values);
  const opt = make(params);
  let dispatches = 0;
  for (let s = 0; s < steps.length; s++) {
    const extra = setGrads(params, steps[s]!, s % 2 === 1 ? 2 : null, clip);
    if (clip) clipGradNorm(params, 0.5).dispose();
    opt.paramGroups[0]!.lr *= 0.9;
    const d0 = rt().stats().dispatches;
    opt.step();
    dispatches += rt().stats().dispatches - d0;
    for (const t of extra) t.dispose();
  }
  const bits = await Promise.all(params.map(async (p) => new Uint32Array((await p.data()).buffer)));
  const state: Uint32Array[] = [];
  for (const p of params) {
    const st = opt.stateOf(p) as unknown as Record<string, unknown>;
    for (const v of Object.values(st)) if (v && typeof v === 'object' && 'data' in v) state.push(new Uint32Array((await (v as Tensor).data()).buffer));
  }
  for (const p of params) p.grad?.dispose();
  opt.dispose();
  for (const t of owned) t.dispose();
  return { bits, state, dispatches };
}

function data(seed: number, nSteps: number): { values: Float32Array[]; steps: Float32Array[][] } {
  const rng = new Rng(seed);
  const values = SIZES.map((n) => Float32Array.from(rng.uniformArray(n, -1, 1)));
  const steps = Array.from({ length: nSteps }, (_, s) => SIZES.map((n) => Float32Array.from(rng.uniformArray(n, -1 / (1 + s), 1 / (1 + s)))));
  return { values, steps };
}

function expectSameBits(a: Uint32Array[], b: Uint32Array[], what: string): void {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => {
    const y = b[i]!;
    expect(x.length, `${what} ${i}: length`).toBe(y.length);
    let bad = -1;
    for (let j = 0; j < x.length && bad < 0; j++) if (x[j] !== y[j]) bad = j;
    expect(bad, `${what} ${i}: first differing element`).toBe(-1);
  });
}

const STEPS = 4;

describe('multi-tensor (foreach) optimizer steps are bit-identical to the per-parameter loop', () => {
  const sgdCases: Partial<SgdOptions>[] = [
    { lr: 0.1 },
    { lr: 0.05, momentum: 0.9, weightDecay: 1e-2 },
    { lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 1e-4, maximize: true },
    { lr: 0.02, momentum: 0.8, nesterov: true, weightDecay: 1e-3 },
  ];
  for (const c of sgdCases) {
    for (const clip of [false, true]) {
      it(`SGD ${JSON.stringify(c)}${clip ? ' after clipGradNorm' : ''}`, async () => {
        const seed = testSeed();
        const { values, steps } = data(seed, STEPS);
        const make = (foreach: boolean) => (ps: Tensor[]) => new SGD(ps, { lr: c.lr!, ...c, foreach });
        const loop = await run(make(false), values, steps, clip);
        const multi = await run(make(true), values, steps, clip);
        expectSameBits(multi.bits, loop.bits, `param (seed ${seed})`);
        expectSameBits(multi.state, loop.state, `state (seed ${seed})`);
        expect(multi.dispatches).toBeLessThan(loop.dispatches);
      });
    }
  }

  const adamCases: Partial<AdamWOptions>[] = [{}, { amsgrad: true, weightDecay: 0.1 }, { lr: 3e-2, betas: [0.8, 0.99], eps: 1e-6, maximize: true }];
  for (const c of adamCases) {
    for (const clip of [false, true]) {
      it(`AdamW ${JSON.stringify(c)}${clip ? ' after clipGradNorm' : ''}`, async () => {
        const seed = testSeed();
        const { values, steps } = data(seed, STEPS);
        const make = (foreach: boolean) => (ps: Tensor[]) => new AdamW(ps, { ...c, foreach });
        const loop = await run(make(false), values, steps, clip);
        const multi = await run(make(true), values, steps, clip);
        expectSameBits(multi.bits, loop.bits, `param (seed ${seed})`);
        expectSameBits(multi.state, loop.state, `state (seed ${seed})`);
        expect(multi.dispatches).toBeLessThan(loop.dispatches);
      });
    }
  }

  it('packs as many parameters per dispatch as the storage-buffer limit allows', async () => {
    const k = slotsPerDispatch(3);
    const limit = rt().device.limits.maxStorageBuffersPerShaderStage;
    expect(k).toBe(Math.min(8, Math.floor(limit / 3)));
    // 2k + 1 plain parameters with momentum, all with grads: ceil((2k + 1) / k) = 3 dispatches.
    const ps = Array.from({ length: 2 * k + 1 }, (_, i) => {
      const t = fromArray(new Float32Array(10 + i).fill(1));
      t.requiresGrad = true;
      t.grad = fromArray(new Float32Array(10 + i).fill(0.5));
      return t;
    });
    const opt = new SGD(ps, { lr: 0.1, momentum: 0.9 });
    const d0 = rt().stats().dispatches;
    opt.step();
    expect(rt().stats().dispatches - d0).toBe(3);
    expect(await ps[2 * k]!.toArray()).toEqual(new Array(10 + 2 * k).fill(Math.fround(1 - Math.fround(0.1) * 0.5)));
    opt.dispose();
    for (const p of ps) {
      p.grad!.dispose();
      p.dispose();
    }
  });

  for (const normType of [2, Infinity, 3]) {
    it(`clipGradNorm and gradNorm (norm ${normType}): multi-tensor bit-identical to per-gradient, fewer dispatches`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      // Odd sizes, one over two partial-norm chunks (2,048 elements each), one empty, one at an offset.
      const sizes = [5000, 1, 0, 257, 2049, 31, 700, 3, 64, 9, 1500, 2];
      const values = sizes.map((n) => Float32Array.from(rng.uniformArray(n, -2, 2)));
      const run = async (foreach: boolean) => {
        const owned: Tensor[] = [];
        const params = values.map((v, i) => {
          const p = fromArray(new Float32Array(Math.max(1, v.length)).fill(0), [Math.max(1, v.length)]);
          owned.push(p);
          if (v.length === 0) return p; // no gradient
          p.requiresGrad = true;
          if (i === 4) {
            const wide = new Float32Array(v.length + 6);
            wide.set(v, 5);
            const src = fromArray(wide);
            owned.push(src);
            p.grad = src.viewAs([v.length], [1], 5);
          } else {
            p.grad = fromArray(v, [v.length]);
          }
          return p;
        }).filter((p, i) => values[i]!.length > 0);
        const d0 = rt().stats().dispatches;
        const plain = gradNorm(params, normType, { foreach });
        const norm = clipGradNorm(params, 0.25, normType, { foreach });
        const dispatches = rt().stats().dispatches - d0;
        const out = {
          plain: new Uint32Array((await plain.data()).buffer),
          norm: new Uint32Array((await norm.data()).buffer),
          grads: await Promise.all(params.map(async (p) => new Uint32Array((await p.grad!.data()).buffer))),
          dispatches,
        };
        plain.dispose();
        norm.dispose();
        for (const p of params) p.grad?.dispose();
        for (const t of owned) t.dispose();
        return out;
      };
      const loop = await run(false);
      const multi = await run(true);
      expectSameBits([multi.plain, multi.norm], [loop.plain, loop.norm], `norm (seed ${seed})`);
      expectSameBits(multi.grads, loop.grads, `clipped gradient (seed ${seed})`);
      expect(multi.dispatches).toBeLessThan(loop.dispatches);
    });
  }
});
