// MODEL.VOVNET.NORM: the BatchNorm2d module (train: batch statistics, running-stat update with
// momentum 0.1 and the unbiased variance, num_batches_tracked counting forwards; eval and frozen:
// running statistics) against float64 references forward and backward on odd shapes, and VoVNet
// built with each norm: Detectron2's state-dict keys, GN's channel check, FREEZE_AT with BN.
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, noGrad, randn } from '../../engine';
import { UserError } from '../../runtime/errors';
import { manualSeed } from '../../engine/nn/init';
import { Module } from '../../engine/nn/module';
import { buildBackbone } from '../../models/build';
import { loadConfig } from '../../models/config/config';
import { BatchNorm2d, FrozenBatchNorm2d, GroupNorm, SyncBatchNorm } from '../../models/layers';
import { VoVNet, type VoVNetNorm } from '../../models/backbone/vovnet';
import { expectClose, numericGrad, Rng, testSeed } from '../util';
import { nhwcToNchw, refNorm, refNormBackward, type RefOut } from '../../kernels/norm/reference';
import { permutedInput } from '../kernels/norm/inputs';

beforeAll(async () => {
  await init();
});

// ---- float64 BatchNorm reference: the shared normalisation reference with one row per channel --

type BnRef = RefOut;
const refBn = (x: Float64Array, dims: number[], w: Float64Array, b: Float64Array, eps: number, fixed?: { mean: Float64Array; varB: Float64Array }): BnRef =>
  refNorm(x, dims, dims[1]!, (_i, k) => k, w, b, eps, fixed);
const refBnBackward = (x: Float64Array, g: Float64Array, dims: number[], w: Float64Array, eps: number, fixed?: { mean: Float64Array; varB: Float64Array }) =>
  refNormBackward(x, g, dims, dims[1]!, (_i, k) => k, w, eps, fixed) as [Float64Array, Float64Array, Float64Array];

/** PyTorch's running-stat update: momentum 0.1, the running variance from the unbiased variance. */
function refRunning(rm: Float64Array, rv: Float64Array, batch: BnRef, cnt: number, momentum = 0.1): { rm: Float64Array; rv: Float64Array } {
  return {
    rm: rm.map((v, k) => (1 - momentum) * v + momentum * batch.mean[k]!),
    rv: rv.map((v, k) => (1 - momentum) * v + (momentum * batch.varB[k]! * cnt) / (cnt - 1)),
  };
}


/** A BatchNorm2d with random affine parameters and running statistics loaded from host data. */
function makeBn(rng: Rng, c: number, Ctor: typeof BatchNorm2d = BatchNorm2d, tracked = 0) {
  const bn = new Ctor(c);
  const p = {
    w: rng.uniformArray(c, 0.5, 1.5),
    b: rng.uniformArray(c, -1, 1),
    rm: rng.uniformArray(c, -0.5, 0.5),
    rv: rng.uniformArray(c, 0.5, 2),
  };
  const f32 = (v: Float64Array) => ({ dtype: 'F32' as const, shape: [c], data: Float32Array.from(v) });
  bn.loadStateDict({
    weight: f32(p.w),
    bias: f32(p.b),
    running_mean: f32(p.rm),
    running_var: f32(p.rv),
    num_batches_tracked: { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(tracked)) },
  });
  return { bn, p };
}

async function state(bn: BatchNorm2d) {
  return {
    rm: Float64Array.from(await bn.getBuffer('running_mean')!.data()),
    rv: Float64Array.from(await bn.getBuffer('running_var')!.data()),
    tracked: await bn.getBuffer('num_batches_tracked')!.item(),
  };
}

describe('BatchNorm2d module', () => {
  it('float64 reference backward matches finite differences', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const dims = [3, 2, 5]; // N, C, HW
    const x = rng.uniformArray(30, -2, 2);
    const g = rng.uniformArray(30, -1, 1);
    const w = rng.uniformArray(2, 0.5, 1.5);
    const b = rng.uniformArray(2, -1, 1);
    const fixed = { mean: rng.uniformArray(2, -0.5, 0.5), varB: rng.uniformArray(2, 0.5, 2) };
    for (const f of [undefined, fixed]) {
      const loss = (xx: Float64Array) => refBn(xx, dims, w, b, 1e-5, f).y.reduce((a, v, i) => a + v * g[i]!, 0);
      const lossW = (ww: Float64Array) => refBn(x, dims, ww, b, 1e-5, f).y.reduce((a, v, i) => a + v * g[i]!, 0);
      const [dx, dw] = refBnBackward(x, g, dims, w, 1e-5, f);
      const what = `reference (${f ? 'running' : 'batch'} statistics, seed ${seed})`;
      expectClose(dx, numericGrad(loss, x), { atol: 1e-6, rtol: 1e-5, what: `${what} dx` });
      expectClose(dw, numericGrad(lossW, Float64Array.from(w)), { atol: 1e-6, rtol: 1e-5, what: `${what} dw` });
    }
  });

  it('has PyTorch state names, a scalar i32 num_batches_tracked and trainable weight/bias', () => {
    const bn = new BatchNorm2d(7);
    expect([...bn.stateDict().keys()]).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(bn.namedParameters().map(([k]) => k)).toEqual(['weight', 'bias']);
    const nbt = bn.getBuffer('num_batches_tracked')!;
    expect(nbt.shape).toEqual([]);
    expect(nbt.dtype).toBe('i32');
    expect([bn.eps, bn.momentum, bn.frozen, bn.training]).toEqual([1e-5, 0.1, false, true]);
    expect(new SyncBatchNorm(7)).toBeInstanceOf(BatchNorm2d);
  });

  for (const Ctor of [BatchNorm2d, SyncBatchNorm]) {
    it(`${Ctor.name} train mode: batch statistics forward/backward, running stats and num_batches_tracked per forward`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const shape = [3, 5, 7, 3];
      const [n, c, h, w] = shape as [number, number, number, number];
      const dims = [n, c, h * w];
      const { bn, p } = makeBn(rng, c, Ctor, 4);
      let rm = p.rm;
      let rv = p.rv;
      for (let step = 1; step <= 3; step++) {
        const what = `${Ctor.name} train step ${step} (seed ${seed})`;
        const x = rng.uniformArray(n * c * h * w, -2, 3);
        const gOut = rng.uniformArray(x.length, -1, 1);
        const ref = refBn(x, dims, p.w, p.b, 1e-5);
        ({ rm, rv } = refRunning(rm, rv, ref, n * h * w));
        const [rdx, rdw, rdb] = refBnBackward(x, gOut, dims, p.w, 1e-5);
        bn.zeroGrad();
        const { leaf, view } = permutedInput(x, shape);
        const y = bn.forward(view);
        expectClose(await y.data(), ref.y, { atol: 2e-5, rtol: 1e-4, what: `${what} forward` });
        const s = await state(bn);
        expectClose(s.rm, rm, { atol: 1e-6, rtol: 1e-5, what: `${what} running_mean` });
        expectClose(s.rv, rv, { atol: 1e-6, rtol: 1e-5, what: `${what} running_var` });
        expect(s.tracked, `${what} num_batches_tracked`).toBe(4 + step);
        backward(y, fromArray(Float32Array.from(gOut), shape));
        expectClose(nhwcToNchw(await leaf.grad!.data(), shape), rdx, { atol: 5e-5, rtol: 1e-3, what: `${what} dx` });
        expectClose(await bn.weight.grad!.data(), rdw, { atol: 1e-4, rtol: 1e-4, what: `${what} dweight` });
        expectClose(await bn.bias.grad!.data(), rdb, { atol: 1e-4, rtol: 1e-4, what: `${what} dbias` });
      }
    });
  }

  it('eval mode normalises with the running statistics and leaves them and the count alone', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [2, 3, 5, 9];
    const [n, c, h, w] = shape as [number, number, number, number];
    const dims = [n, c, h * w];
    const { bn, p } = makeBn(rng, c, BatchNorm2d, 11);
    bn.eval();
    const x = rng.uniformArray(n * c * h * w, -2, 2);
    const gOut = rng.uniformArray(x.length, -1, 1);
    const fixed = { mean: p.rm, varB: p.rv };
    const ref = refBn(x, dims, p.w, p.b, 1e-5, fixed);
    const [rdx, rdw, rdb] = refBnBackward(x, gOut, dims, p.w, 1e-5, fixed);
    const X = fromArray(Float32Array.from(x), shape);
    X.requiresGrad = true;
    const y = bn.forward(X);
    const what = `BatchNorm2d eval (seed ${seed})`;
    expectClose(await y.data(), ref.y, { atol: 2e-5, rtol: 1e-4, what: `${what} forward` });
    backward(y, fromArray(Float32Array.from(gOut), shape));
    expectClose(await X.grad!.data(), rdx, { atol: 2e-5, rtol: 1e-4, what: `${what} dx` });
    expectClose(await bn.weight.grad!.data(), rdw, { atol: 1e-4, rtol: 1e-4, what: `${what} dweight` });
    expectClose(await bn.bias.grad!.data(), rdb, { atol: 1e-4, rtol: 1e-4, what: `${what} dbias` });
    const s = await state(bn);
    expect(Array.from(s.rm)).toEqual(Array.from(Float32Array.from(p.rm)));
    expect(Array.from(s.rv)).toEqual(Array.from(Float32Array.from(p.rv)));
    expect(s.tracked).toBe(11);
  });

  it('frozen: running statistics in train mode, running stats and count unchanged', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const shape = [2, 5, 3, 7];
    const [n, c, h, w] = shape as [number, number, number, number];
    const { bn, p } = makeBn(rng, c, SyncBatchNorm, 2);
    bn.frozen = true;
    expect(bn.training).toBe(true);
    const x = rng.uniformArray(n * c * h * w, -2, 2);
    const ref = refBn(x, [n, c, h * w], p.w, p.b, 1e-5, { mean: p.rm, varB: p.rv });
    const { view } = permutedInput(x, shape);
    expectClose(await bn.forward(view).data(), ref.y, { atol: 2e-5, rtol: 1e-4, what: `frozen BN forward (seed ${seed})` });
    const s = await state(bn);
    expect(Array.from(s.rm)).toEqual(Array.from(Float32Array.from(p.rm)));
    expect(Array.from(s.rv)).toEqual(Array.from(Float32Array.from(p.rv)));
    expect(s.tracked).toBe(2);
  });
});

// ---- VoVNet with each norm ----------------------------------------------------------------------

/** Detectron2's module names of every norm in V-19-slim-eSE (stem, then one OSA block per stage). */
function v19SlimNormPrefixes(): string[] {
  const out = ['stem.stem_1/norm', 'stem.stem_2/norm', 'stem.stem_3/norm'];
  for (let s = 2; s <= 5; s++) {
    for (let i = 0; i < 3; i++) out.push(`stage${s}.OSA${s}_1.layers.${i}.OSA${s}_1_${i}/norm`);
    out.push(`stage${s}.OSA${s}_1.concat.OSA${s}_1_concat/norm`);
  }
  return out;
}

const NORM_STATE: Record<Exclude<VoVNetNorm, 'GN'>, string[]> = {
  FrozenBN: ['weight', 'bias', 'running_mean', 'running_var'],
  BN: ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'],
  SyncBN: ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'],
};

const NORM_CLASS = { FrozenBN: FrozenBatchNorm2d, BN: BatchNorm2d, SyncBN: SyncBatchNorm, GN: GroupNorm } as const;

function modulesOf<T>(m: Module, Ctor: abstract new (...a: never[]) => T): [string, T][] {
  return m.namedModules().filter(([, x]) => x instanceof Ctor) as [string, T][];
}

describe('VoVNet MODEL.VOVNET.NORM', () => {
  for (const norm of ['FrozenBN', 'BN', 'SyncBN'] as const) {
    it(`${norm}: Detectron2 state-dict keys, in PyTorch order, and a forward at 1x3x64x64`, async () => {
      manualSeed(5);
      const net = new VoVNet('V-19-slim-eSE', { norm, outFeatures: ['stage2', 'stage3', 'stage4', 'stage5'] });
      const sd = net.stateDict();
      const keys = [...sd.keys()];
      const normKeys = keys.filter((k) => k.includes('/norm.'));
      expect(normKeys).toEqual(v19SlimNormPrefixes().flatMap((p) => NORM_STATE[norm].map((s) => `${p}.${s}`)));
      expect(keys).toContain('stage2.OSA2_1.layers.0.OSA2_1_0/norm.weight');
      expect(keys).toContain('stage2.OSA2_1.layers.0.OSA2_1_0/conv.weight');
      expect(keys).toContain('stage5.OSA5_1.ese.fc.bias');
      // Every other key is a conv or eSE weight, as with FrozenBN.
      expect(keys.filter((k) => !k.includes('/norm.')).every((k) => /\/conv\.weight$|\.ese\.fc\.(weight|bias)$/.test(k))).toBe(true);
      const norms = modulesOf<Module>(net, NORM_CLASS[norm]);
      expect(norms.length).toBe(19);
      expect(norms.every(([, m]) => m.constructor === NORM_CLASS[norm])).toBe(true);
      const params = new Set(net.namedParameters().map(([k]) => k));
      // BN's affine weights are parameters (trained); FrozenBN's are buffers.
      expect(params.has('stem.stem_1/norm.weight')).toBe(norm !== 'FrozenBN');
      expect(params.has('stem.stem_1/norm.running_mean')).toBe(false);
      if (norm !== 'FrozenBN') {
        const nbt = sd.get('stage3.OSA3_1.concat.OSA3_1_concat/norm.num_batches_tracked')!;
        expect([nbt.shape, nbt.dtype]).toEqual([[], 'i32']);
      }

      // Train-mode forward: BN counts one batch and moves its running mean; FrozenBN does not.
      const x = randn([1, 3, 64, 64], 7);
      const out = noGrad(() => net.forward(x));
      expect(out.stage5!.shape).toEqual([1, 512, 2, 2]);
      const feat = await out.stage5!.data();
      expect(feat.every(Number.isFinite)).toBe(true);
      // num_batches_tracked is a new tensor after each training forward: take a fresh state dict.
      const sd1 = net.stateDict();
      const rm = await sd1.get('stem.stem_1/norm.running_mean')!.data();
      if (norm === 'FrozenBN') {
        expect(rm.every((v) => v === 0)).toBe(true);
      } else {
        expect(rm.some((v) => v !== 0)).toBe(true);
        const counts = await Promise.all(norms.map(([, m]) => (m as BatchNorm2d).getBuffer('num_batches_tracked')!.item()));
        expect(counts).toEqual(new Array(19).fill(1));
      }
      // Eval mode: nothing changes any more, and a second eval forward gives the same output.
      net.eval();
      const before = await sd1.get('stage4.OSA4_1.layers.1.OSA4_1_1/norm.running_var')!.data();
      const a = await noGrad(() => net.forward(x)).stage5!.data();
      const b = await noGrad(() => net.forward(x)).stage5!.data();
      expect(Array.from(a)).toEqual(Array.from(b));
      const sd2 = net.stateDict();
      expect(Array.from(await sd2.get('stage4.OSA4_1.layers.1.OSA4_1_1/norm.running_var')!.data())).toEqual(Array.from(before));
      if (norm !== 'FrozenBN') expect(await sd2.get('stem.stem_2/norm.num_batches_tracked')!.item()).toBe(1);
      net.dispose();
    }, 120_000);
  }

  it('GN: 32 groups with weight/bias parameters on V-19-eSE; the dw variant names its norms pw_norm', async () => {
    manualSeed(6);
    const net = new VoVNet('V-19-eSE', { norm: 'GN' });
    const gns = modulesOf(net, GroupNorm);
    expect(gns.length).toBe(19);
    expect(gns.every(([, m]) => m.numGroups === 32)).toBe(true);
    const keys = [...net.stateDict().keys()].filter((k) => k.includes('/norm.'));
    expect(keys.slice(0, 4)).toEqual(['stem.stem_1/norm.weight', 'stem.stem_1/norm.bias', 'stem.stem_2/norm.weight', 'stem.stem_2/norm.bias']);
    expect(keys.length).toBe(38);
    expect(net.namedParameters().map(([k]) => k)).toContain('stage3.OSA3_1.concat.OSA3_1_concat/norm.weight');
    const out = noGrad(() => net.forward(randn([1, 3, 64, 64], 8)));
    expect((await out.stage5!.data()).every(Number.isFinite)).toBe(true);
    net.dispose();

    const dw = new VoVNet('V-19-slim-dw-eSE', { norm: 'BN' });
    const dwKeys = [...dw.stateDict().keys()];
    expect(dwKeys).toContain('stem.stem_2/pw_norm.num_batches_tracked');
    expect(dwKeys).toContain('stage3.OSA3_1.conv_reduction.OSA3_1_reduction_0/norm.num_batches_tracked');
    expect(dwKeys).toContain('stage2.OSA2_1.layers.0.OSA2_1_0/pw_norm.running_var');
    expect(modulesOf(dw, BatchNorm2d).length).toBe(dwKeys.filter((k) => k.endsWith('.num_batches_tracked')).length);
    dw.dispose();
  }, 120_000);

  it('GN on V-19-slim-eSE: a UserError naming the layer and its channel count', () => {
    const build = () => new VoVNet('V-19-slim-eSE', { norm: 'GN' });
    expect(build).toThrow(UserError);
    // stage2's concat conv has 112 output channels, the first that 32 does not divide.
    expect(build).toThrow(/'GN' uses 32 groups, but OSA2_1_concat\/norm has 112 channels/);
    const cfg = loadConfig('configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml', ['MODEL.VOVNET.NORM', 'GN']);
    expect(() => buildBackbone(cfg)).toThrow(/OSA2_1_concat\/norm has 112 channels/);
    expect(() => new VoVNet('V-19-slim-eSE', { norm: 'LN' })).toThrow(UserError);
    expect(() => new VoVNet('V-19-slim-eSE', { norm: 'LN' })).toThrow(/MODEL\.VOVNET\.NORM 'LN' is not supported; expected one of FrozenBN, BN, SyncBN, GN/);
  });

  it('FREEZE_AT 2 with BN (from the config): stem and stage2 use running statistics and do not train', async () => {
    manualSeed(9);
    const cfg = loadConfig('configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml', ['MODEL.VOVNET.NORM', 'BN', 'MODEL.BACKBONE.FREEZE_AT', '2']);
    const fpn = buildBackbone(cfg);
    const net = fpn.bottomUp;
    const bns = modulesOf(net, BatchNorm2d);
    expect(bns.length).toBe(19);
    const isFrozenStage = (k: string) => k.startsWith('stem.') || k.startsWith('stage2.');
    for (const [k, m] of bns) {
      expect(m.frozen, k).toBe(isFrozenStage(k));
      expect(m.weight.requiresGrad, `${k}.weight`).toBe(!isFrozenStage(k));
      expect(m.bias.requiresGrad, `${k}.bias`).toBe(!isFrozenStage(k));
    }
    for (const [k, t] of net.namedParameters()) expect(t.requiresGrad, k).toBe(!isFrozenStage(k));

    // Give the frozen norms non-trivial running statistics, then run one training forward.
    const rng = new Rng(testSeed());
    for (const [, m] of bns) {
      const c = m.numFeatures;
      m.loadStateDict({
        weight: { dtype: 'F32', shape: [c], data: Float32Array.from(rng.uniformArray(c, 0.5, 1.5)) },
        bias: { dtype: 'F32', shape: [c], data: Float32Array.from(rng.uniformArray(c, -0.2, 0.2)) },
        running_mean: { dtype: 'F32', shape: [c], data: Float32Array.from(rng.uniformArray(c, -0.2, 0.2)) },
        running_var: { dtype: 'F32', shape: [c], data: Float32Array.from(rng.uniformArray(c, 0.5, 2)) },
        num_batches_tracked: { dtype: 'I32', shape: [], data: Int32Array.of(30) },
      });
    }
    const before = await Promise.all(bns.map(async ([, m]) => Array.from(await m.getBuffer('running_mean')!.data())));
    const net2 = new VoVNet('V-19-slim-eSE', { norm: 'BN', freezeAt: 2, outFeatures: ['stage2', 'stage3'] });
    net2.loadStateDict(net.stateDict());
    const x = randn([1, 3, 64, 64], 10);
    x.requiresGrad = true;
    // The frozen part gives the same stage2 output in train and eval mode (running statistics);
    // stage3 (batch statistics in train mode) does not.
    const train = net2.forward(x);
    const s2Train = await train.stage2!.data();
    const s3Train = await train.stage3!.data();
    backward(train.stage3!, fromArray(new Float32Array(train.stage3!.numel).fill(1), train.stage3!.shape));
    expect(x.grad, 'the input still gets a gradient through the frozen stages').not.toBeNull();
    // stage4/5 run too but are not in stage3's graph: check the stages that are.
    const inGraph = net2.namedParameters().filter(([k]) => !k.startsWith('stage4.') && !k.startsWith('stage5.'));
    expect(inGraph.length).toBeGreaterThan(30);
    for (const [k, t] of inGraph) expect(t.grad === null, `${k} gradient`).toBe(isFrozenStage(k));
    net2.eval();
    const evalOut = noGrad(() => net2.forward(x));
    expectClose(await evalOut.stage2!.data(), s2Train, { atol: 1e-5, rtol: 1e-5, what: 'frozen stage2, train vs eval' });
    const s3Eval = await evalOut.stage3!.data();
    expect(s3Eval.some((v, i) => Math.abs(v - s3Train[i]!) > 1e-3)).toBe(true);
    for (const [k, m] of modulesOf(net2, BatchNorm2d)) {
      expect(await m.getBuffer('num_batches_tracked')!.item(), k).toBe(isFrozenStage(k) ? 30 : 31);
      const i = bns.findIndex(([kk]) => kk === k);
      const rm = Array.from(await m.getBuffer('running_mean')!.data());
      if (isFrozenStage(k)) expect(rm, k).toEqual(before[i]);
      else expect(rm, k).not.toEqual(before[i]);
    }
    fpn.dispose();
    net2.dispose();
  }, 120_000);
});
