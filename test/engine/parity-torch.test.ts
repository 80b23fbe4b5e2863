// Parity with PyTorch 1.13 on committed fixtures (scripts/fixtures/make_core_fixtures.py writes
// test/fixtures/engine/torch_parity.json): matmul, softmax and reductions, forward and the gradients
// of sum(out * g); and a 5 -> 7 -> 3 MLP trained 3 steps with SGD (momentum, weight decay, Nesterov
// off/on, parameter groups with clipping) and AdamW (plain, amsgrad): loss and all parameters after
// each step. No Python needed.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, max, mean, mul, relu, scope, square, sub, sum, tanh, type Tensor, transpose } from '../../engine';
import { Linear } from '../../engine/nn/linear';
import { Module } from '../../engine/nn/module';
import { AdamW } from '../../engine/optim/adamw';
import { clipGradNorm } from '../../engine/optim/clip';
import type { Optimizer } from '../../engine/optim/optimizer';
import { SGD } from '../../engine/optim/sgd';
import { matmul } from '../../engine/ops/matmul';
import { softmax } from '../../engine/ops/softmax';
import { expectClose } from '../util';

interface Arr {
  shape: number[];
  data: number[];
}
interface Fixture {
  torch_version: string;
  matmul: { a: Arr; b: Arr; transpose_b: boolean; g: Arr; out: Arr; grad_a: Arr; grad_b: Arr }[];
  softmax: { x: Arr; dim: number; g: Arr; out: Arr; grad_x: Arr }[];
  reductions: { op: 'sum' | 'mean' | 'max'; axes: number[] | null; keepdim: boolean; x: Arr; g: Arr; out: Arr; grad_x: Arr }[];
  mlp: {
    x: Arr;
    target: Arr;
    init: Record<string, Arr>;
    runs: {
      name: string;
      act: 'tanh' | 'relu';
      clip_norm?: number;
      optimizer: Record<string, number | boolean | string | number[]> & { type: 'sgd' | 'adamw' };
      steps: { loss: number; grad_norm?: number; params: Record<string, Arr> }[];
    }[];
  };
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/engine/torch_parity.json', import.meta.url), 'utf8')) as Fixture;

const upload = (a: Arr, requiresGrad = false): Tensor => {
  const t = fromArray(Float32Array.from(a.data), a.shape);
  t.requiresGrad = requiresGrad;
  return t;
};

beforeAll(async () => {
  await init();
});

/** out = fn(inputs); backward of sum(out * g); returns [out, ...input grads] read back. */
async function forwardBackward(fn: (...xs: Tensor[]) => Tensor, inputs: Arr[], g: Arr): Promise<{ out: Float32Array; grads: Float32Array[] }> {
  const xs = inputs.map((a) => upload(a, true));
  const gT = upload(g);
  const out = scope(() => {
    const y = fn(...xs);
    backward(sum(mul(y, gT)));
    return y.detach();
  });
  const result = { out: (await out.data()) as Float32Array, grads: await Promise.all(xs.map(async (x) => (await x.grad!.data()) as Float32Array)) };
  for (const t of [...xs, gT, out]) {
    t.grad?.dispose();
    t.dispose();
  }
  return result;
}

describe(`PyTorch ${fixture.torch_version} parity: ops`, () => {
  fixture.matmul.forEach((c, i) => {
    it(`matmul #${i}: [${c.a.shape}] x [${c.b.shape}]${c.transpose_b ? 'ᵀ' : ''}`, async () => {
      const r = await forwardBackward((a, b) => matmul(a!, c.transpose_b ? transpose(b!, -1, -2) : b!), [c.a, c.b], c.g);
      expectClose(r.out, c.out.data, { atol: 1e-5, rtol: 1e-5, what: 'matmul out', shape: c.out.shape });
      expectClose(r.grads[0]!, c.grad_a.data, { atol: 1e-5, rtol: 1e-5, what: 'matmul grad a', shape: c.a.shape });
      expectClose(r.grads[1]!, c.grad_b.data, { atol: 1e-5, rtol: 1e-5, what: 'matmul grad b', shape: c.b.shape });
    });
  });

  fixture.softmax.forEach((c, i) => {
    it(`softmax #${i}: [${c.x.shape}] over dim ${c.dim}`, async () => {
      const r = await forwardBackward((x) => softmax(x!, c.dim), [c.x], c.g);
      expectClose(r.out, c.out.data, { atol: 1e-6, rtol: 1e-5, what: 'softmax out', shape: c.out.shape });
      expectClose(r.grads[0]!, c.grad_x.data, { atol: 1e-6, rtol: 1e-5, what: 'softmax grad', shape: c.x.shape });
    });
  });

  fixture.reductions.forEach((c, i) => {
    it(`reduction #${i}: ${c.op} over ${c.axes ? `[${c.axes}]` : 'all'}${c.keepdim ? ' keepdim' : ''} of [${c.x.shape}]`, async () => {
      const axes = c.axes ?? undefined;
      const fn = (x: Tensor) => (c.op === 'sum' ? sum(x, axes, { keepdim: c.keepdim }) : c.op === 'mean' ? mean(x, axes, { keepdim: c.keepdim }) : max(x, axes, { keepdim: c.keepdim }));
      const r = await forwardBackward((x) => fn(x!), [c.x], c.g);
      expectClose(r.out, c.out.data, { atol: 1e-5, rtol: 1e-5, what: `${c.op} out`, shape: c.out.shape });
      expectClose(r.grads[0]!, c.grad_x.data, { atol: 1e-6, rtol: 1e-5, what: `${c.op} grad`, shape: c.x.shape });
    });
  });
});

class Mlp extends Module {
  fc1 = this.registerModule('fc1', new Linear(5, 7));
  fc2 = this.registerModule('fc2', new Linear(7, 3));
  constructor(readonly act: 'tanh' | 'relu') {
    super();
  }
  forward(x: Tensor): Tensor {
    const h = this.fc1.forward(x);
    return this.fc2.forward(this.act === 'tanh' ? tanh(h) : relu(h));
  }
}

function makeOptimizer(model: Mlp, o: Fixture['mlp']['runs'][number]['optimizer']): Optimizer<{ lr: number }, unknown> {
  if (o.type === 'sgd') {
    const opts = { lr: o.lr as number, momentum: o.momentum as number, weightDecay: o.weight_decay as number, nesterov: o.nesterov as boolean };
    if (o.bias_lr_factor === undefined) return new SGD(model.parameters(), opts);
    const named = model.namedParameters();
    const weights = named.filter(([k]) => k.endsWith('weight')).map(([, t]) => t);
    const biases = named.filter(([k]) => k.endsWith('bias')).map(([, t]) => t);
    return new SGD([{ params: weights }, { params: biases, lr: opts.lr * (o.bias_lr_factor as number), weightDecay: o.bias_weight_decay as number }], opts);
  }
  const betas = o.betas as number[];
  return new AdamW(model.parameters(), { lr: o.lr as number, betas: [betas[0]!, betas[1]!], eps: o.eps as number, weightDecay: o.weight_decay as number, amsgrad: o.amsgrad as boolean });
}

describe(`PyTorch ${fixture.torch_version} parity: MLP 5 -> 7 -> 3 trained 3 steps`, () => {
  const { mlp } = fixture;
  /** Largest absolute error per run (loss, parameters), printed once for the record. */
  const worst = new Map<string, { loss: number; params: number }>();
  afterAll(() => {
    const rows = [...worst].map(([k, v]) => `${k}: loss ${v.loss.toExponential(2)}, params ${v.params.toExponential(2)}`);
    console.log(`max |GPU - PyTorch| over 3 steps\n  ${rows.join('\n  ')}`);
  });
  for (const run of mlp.runs) {
    it(`${run.name} (${run.act}${run.clip_norm ? `, clip ${run.clip_norm}` : ''}): loss and parameters after each step`, async () => {
      const model = new Mlp(run.act);
      model.loadStateDict(new Map(Object.entries(mlp.init).map(([k, a]) => [k, { dtype: 'F32' as const, shape: a.shape, data: Float32Array.from(a.data) }])));
      const opt = makeOptimizer(model, run.optimizer);
      const x = upload(mlp.x);
      const target = upload(mlp.target);
      for (const [i, expected] of run.steps.entries()) {
        const { loss, norm } = scope(() => {
          opt.zeroGrad();
          const l = mean(square(sub(model.forward(x), target)));
          backward(l);
          const n = run.clip_norm !== undefined ? clipGradNorm(model.parameters(), run.clip_norm) : null;
          opt.step();
          return { loss: l.detach(), norm: n };
        });
        const w = worst.get(run.name) ?? { loss: 0, params: 0 };
        worst.set(run.name, w);
        w.loss = Math.max(w.loss, expectClose([await loss.item()], [expected.loss], { atol: 1e-6, rtol: 1e-5, what: `${run.name} step ${i + 1} loss` }).maxAbs);
        if (expected.grad_norm !== undefined) expectClose([await norm!.item()], [expected.grad_norm], { atol: 1e-6, rtol: 1e-5, what: `${run.name} step ${i + 1} grad norm` });
        const state = model.stateDict();
        expect([...state.keys()]).toEqual(Object.keys(expected.params));
        for (const [k, a] of Object.entries(expected.params)) {
          const r = expectClose(await state.get(k)!.data(), a.data, { atol: 2e-6, rtol: 1e-5, what: `${run.name} step ${i + 1} ${k}`, shape: a.shape });
          w.params = Math.max(w.params, r.maxAbs);
        }
        loss.dispose();
        norm?.dispose();
      }
      opt.dispose();
      model.zeroGrad();
      model.dispose();
      x.dispose();
      target.dispose();
    });
  }
});
