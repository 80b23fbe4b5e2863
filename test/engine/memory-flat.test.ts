// Memory stays flat over training: 200 iterations of forward + backward + gradient clipping +
// optimizer step of a small MLP, each inside scope(), leave exactly the same live tensors and live
// bytes after iteration 10 as after iteration 200 (optimizer state and gradients are allocated
// once; every temporary returns to the pool).
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init, mean, memory, rt, scope, square, sub, type Tensor } from '../../engine';
import { Linear } from '../../engine/nn/linear';
import { Module } from '../../engine/nn/module';
import { AdamW } from '../../engine/optim/adamw';
import { clipGradNorm } from '../../engine/optim/clip';
import { SGD } from '../../engine/optim/sgd';
import { WarmupMultiStepLR } from '../../engine/optim/lr-scheduler';
import { Rng, testSeed } from '../util';

beforeAll(async () => {
  await init();
});

class Mlp extends Module {
  fc1 = this.registerModule('fc1', new Linear(6, 16, { seed: 1 }));
  fc2 = this.registerModule('fc2', new Linear(16, 3, { seed: 2 }));
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.fc1.forward(x, 'relu'));
  }
}

describe('memory over 200 training iterations', () => {
  for (const kind of ['sgd', 'adamw'] as const) {
    it(`${kind}: live tensors and bytes identical after iteration 10 and 200, and the loss went down`, async () => {
      const seed = testSeed();
      const rng = new Rng(seed);
      const model = new Mlp();
      const x = fromArray(Float32Array.from(rng.uniformArray(8 * 6, -1, 1)), [8, 6]);
      const target = fromArray(Float32Array.from(rng.uniformArray(8 * 3, -1, 1)), [8, 3]);
      const opt =
        kind === 'sgd'
          ? new SGD([{ params: [model.fc1.weight, model.fc2.weight] }, { params: [model.fc1.bias!, model.fc2.bias!], weightDecay: 0 }], { lr: 0.05, momentum: 0.9, weightDecay: 1e-4, nesterov: true })
          : new AdamW(model.parameters(), { lr: 1e-2, amsgrad: true });
      const sched = new WarmupMultiStepLR(opt, { steps: [150], warmupIters: 20, warmupFactor: 0.1 });
      const step = (keepLoss: boolean) =>
        scope(() => {
          opt.zeroGrad();
          const loss = mean(square(sub(model.forward(x), target)));
          backward(loss);
          clipGradNorm(model.parameters(), 5);
          opt.step();
          sched.step();
          return keepLoss ? loss.detach() : null;
        });
      const firstLoss = step(true)!;
      let at10: ReturnType<typeof memory> | undefined;
      let at200: ReturnType<typeof memory> | undefined;
      for (let it = 2; it <= 200; it++) {
        step(false);
        if (it === 10 || it === 200) {
          rt().flush(); // the uniform arena of the open batch goes back to the pool
          if (it === 10) at10 = memory();
          else at200 = memory();
        }
      }
      const what = `(seed ${seed}) at 10: ${JSON.stringify(at10)}, at 200: ${JSON.stringify(at200)}`;
      expect(at200!.liveTensors, `live tensors ${what}`).toBe(at10!.liveTensors);
      expect(at200!.liveBytes, `live bytes ${what}`).toBe(at10!.liveBytes);
      expect(at200!.liveStorages, `live storages ${what}`).toBe(at10!.liveStorages);
      const l0 = await firstLoss.item();
      const l200 = await (async () => {
        const l = scope(() => mean(square(sub(model.forward(x), target))));
        const v = await l.item();
        l.dispose();
        return v;
      })();
      expect(l200, `loss ${l0} -> ${l200} (seed ${seed})`).toBeLessThan(0.5 * l0);
      firstLoss.dispose();
      opt.zeroGrad();
      opt.dispose();
      model.dispose();
      x.dispose();
      target.dispose();
    });
  }
});
