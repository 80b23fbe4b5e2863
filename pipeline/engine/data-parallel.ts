// Data parallelism in one process (`cellseg train --num-gpus N`), Detectron2's DDP step done by
// hand: one model replica, optimizer and gradient clipper per device (runtime.ts openDevices);
// every iteration the batch is split into N contiguous shards of IMS_PER_BATCH / N images, each
// replica runs forward and backward on its shard under `withDevice` (its loss weighted by the
// shard's share of the batch, micro-batches inside a shard as SOLVER.MICRO_BATCH_SIZE says), the
// gradients are all-reduced on the host (each replica's gradients read back in one transfer,
// summed in f32 in replica order 0, 1, ..., N-1, so the result does not depend on timing, and
// written back to every replica), and every replica clips and steps with the same gradients and
// the same lr, so the replicas stay identical. With mixed precision each replica has its own
// GradScaler (as DDP processes do): they start from replica 0's state and see the same summed
// gradients, so they find the same inf/NaN and keep the same scale. Replica 0 is the trainer's model: checkpoints,
// evaluation and resume use it, and `broadcast` copies its weights and optimizer state to the
// others. The replicas run one after the other on the host; their devices work concurrently only
// as far as the host records one while another's queue drains (readbacks inside a model's forward,
// as CenterMask's proposals, serialise them).
import type { CfgNode } from '../../models/config/config';
import { noGrad } from '../../engine/autograd';
import { fromArray, scope, scopeAsync, zeros, type Tensor } from '../../engine/tensor';
import { add } from '../../engine/ops/elementwise';
import { cat } from '../../engine/ops/join';
import { reshape } from '../../engine/ops/view';
import { loadOptimizerStateDict, optimizerStateDict } from '../../engine/optim/state';
import type { SGD } from '../../engine/optim/sgd';
import { withDevice, type Runtime } from '../../runtime/runtime';
import { UserError } from '../../runtime/errors';
import type { TrainBatch } from '../data/train-loader';
import type { TrainableModel } from './model';
import { buildGradientClipper, buildOptimizer } from './solver';
import { modelStateToHost } from './checkpoint';
import { lossesAndBackward, microBatches } from './trainer-step';
import { GradScaler } from '../../engine/optim/grad-scaler';

const perDeviceWhat = (cfg: CfgNode, n: number) => `the ${cfg.SOLVER.IMS_PER_BATCH / n} images per device (SOLVER.IMS_PER_BATCH ${cfg.SOLVER.IMS_PER_BATCH} / --num-gpus ${n})`;

export interface Replica {
  device: Runtime;
  model: TrainableModel;
  optimizer: SGD;
  params: Tensor[];
  /** Mixed precision: this replica's GradScaler (replica 0's is the trainer's), else null. */
  scaler: GradScaler | null;
}

export class DataParallel {
  private readonly clippers: (((params: readonly Tensor[]) => void) | null)[];

  private constructor(
    readonly cfg: CfgNode,
    readonly replicas: readonly Replica[],
  ) {
    this.clippers = replicas.map(() => buildGradientClipper(cfg));
  }

  /**
   * Replica 0 is `model` with `optimizer` on `devices[0]` (the device they were made on); replicas
   * 1..N-1 are built by `build` on the other devices, with their own optimizers. Call `broadcast`
   * before the first step (and after loading weights or optimizer state into replica 0).
   */
  static create(cfg: CfgNode, devices: readonly Runtime[], model: TrainableModel, optimizer: SGD, build: () => TrainableModel, scaler: GradScaler | null = null): DataParallel {
    const n = devices.length;
    if (n < 1) throw new Error('DataParallel: no devices');
    if (cfg.SOLVER.IMS_PER_BATCH % n !== 0) {
      throw new UserError(`SOLVER.IMS_PER_BATCH ${cfg.SOLVER.IMS_PER_BATCH} must be divisible by the number of devices (--num-gpus ${n})`);
    }
    microBatches(cfg.SOLVER.IMS_PER_BATCH / n, cfg.SOLVER.MICRO_BATCH_SIZE, perDeviceWhat(cfg, n)); // validates the split per device
    const paramsOf = (o: SGD) => o.paramGroups.flatMap((g) => g.params);
    const replicas: Replica[] = [{ device: devices[0]!, model, optimizer, params: paramsOf(optimizer), scaler }];
    for (const device of devices.slice(1)) {
      replicas.push(
        withDevice(device, () => {
          const m = build();
          m.train();
          const { optimizer: o } = buildOptimizer(cfg, m);
          return { device, model: m, optimizer: o, params: paramsOf(o), scaler: scaler ? new GradScaler() : null };
        }),
      );
    }
    const count = replicas[0]!.params.length;
    for (const r of replicas) if (r.params.length !== count) throw new Error(`DataParallel: replicas have ${r.params.length} and ${count} parameters`);
    return new DataParallel(cfg, replicas);
  }

  get size(): number {
    return this.replicas.length;
  }

  /** Copy replica 0's weights, buffers and optimizer state to every other replica. */
  async broadcast(): Promise<void> {
    if (this.size === 1) return;
    const first = this.replicas[0]!;
    const weights = await modelStateToHost(first.model);
    const state = await optimizerStateDict(first.optimizer);
    const scalerState = first.scaler ? await withDevice(first.device, () => first.scaler!.stateDict()) : null;
    for (const r of this.replicas.slice(1)) {
      withDevice(r.device, () => {
        r.model.loadStateDict(weights, { strict: true });
        loadOptimizerStateDict(r.optimizer, state);
        if (scalerState) r.scaler?.loadStateDict(scalerState);
      });
    }
  }

  /**
   * One iteration on every replica: forward/backward per shard, all-reduce, clip, step. Returns
   * the loss row [each loss..., total] of the whole batch (the shards' weighted rows summed in
   * replica order) as a tensor on device 0.
   */
  async step(batch: TrainBatch, checkNames: (sortedNames: string[]) => void): Promise<Tensor> {
    const B = batch.inputs.length;
    const n = this.size;
    const shard = B / n;
    if (!Number.isInteger(shard)) throw new Error(`DataParallel.step: a batch of ${B} images does not split over ${n} devices`);
    const parts = microBatches(shard, this.cfg.SOLVER.MICRO_BATCH_SIZE, perDeviceWhat(this.cfg, n));
    // lr (set on replica 0 by the scheduler) to every replica
    const lrs = this.replicas[0]!.optimizer.paramGroups.map((g) => g.lr);
    const rows: Float32Array[] = [];
    for (let i = 0; i < n; i++) {
      const r = this.replicas[i]!;
      r.optimizer.paramGroups.forEach((g, j) => (g.lr = lrs[j]!));
      const row = await withDevice(r.device, () =>
        scopeAsync(async () => {
          r.optimizer.zeroGrad();
          let acc: Tensor | null = null;
          for (const [s, e] of parts) {
            const a = i * shard + s;
            const b = i * shard + e;
            const part = await lossesAndBackward(r.model, batch.inputs.slice(a, b), batch.gts.slice(a, b), (b - a) / B, checkNames, r.scaler);
            acc = acc ? noGrad(() => add(acc!, part)) : part;
          }
          return acc!;
        }),
      );
      rows.push((await row.data()) as Float32Array);
      row.dispose();
    }
    await this.allReduceGradients();
    for (let i = 0; i < n; i++) {
      const r = this.replicas[i]!;
      withDevice(r.device, () => {
        if (r.scaler) {
          r.scaler.unscale(r.optimizer);
          this.clippers[i]?.(r.params);
          r.scaler.step(r.optimizer);
          r.scaler.update();
        } else {
          this.clippers[i]?.(r.params);
          r.optimizer.step();
        }
      });
    }
    const total = new Float32Array(rows[0]!.length);
    for (const row of rows) for (let k = 0; k < total.length; k++) total[k] = total[k]! + row[k]!;
    return withDevice(this.replicas[0]!.device, () => fromArray(total));
  }

  /** Sum every parameter's gradient over the replicas, in replica order, in f32 on the host, and
   *  give each replica the sum. A parameter without a gradient on any replica keeps none. */
  private async allReduceGradients(): Promise<void> {
    if (this.size === 1) return;
    const first = this.replicas[0]!;
    const sizes = first.params.map((p) => p.numel);
    const offsets: number[] = [];
    let total = 0;
    for (const s of sizes) offsets.push(total), (total += s);
    const hasGrad = first.params.map((_, j) => this.replicas.some((r) => r.params[j]!.grad));
    const sum = new Float32Array(total);
    for (const r of this.replicas) {
      const flat = withDevice(r.device, () =>
        scope(() => noGrad(() => {
          const pieces = r.params.map((p, j) => (hasGrad[j] ? reshape(p.grad ?? zeros(p.shape), [p.numel]) : null)).filter((t): t is Tensor => t !== null);
          return pieces.length ? cat(pieces) : null;
        })),
      );
      if (!flat) return;
      const g = (await flat.data()) as Float32Array;
      flat.dispose();
      let k = 0;
      first.params.forEach((_, j) => {
        if (!hasGrad[j]) return;
        const o = offsets[j]!;
        for (let e = 0; e < sizes[j]!; e++) sum[o + e] = sum[o + e]! + g[k++]!;
      });
    }
    for (const r of this.replicas) {
      withDevice(r.device, () => {
        r.params.forEach((p, j) => {
          if (!hasGrad[j]) return;
          p.grad?.dispose();
          p.grad = fromArray(sum.subarray(offsets[j]!, offsets[j]! + sizes[j]!), p.shape).keep();
        });
      });
    }
  }

  /** Free the optimizers' state and the replicas other than replica 0 (the trainer owns it). */
  dispose(): void {
    for (const r of this.replicas.slice(1)) {
      withDevice(r.device, () => {
        r.optimizer.dispose();
        r.scaler?.dispose();
        r.model.dispose();
      });
    }
  }
}
