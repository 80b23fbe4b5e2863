// Optimizer state dicts, as torch.optim's state_dict()/load_state_dict(): every group's
// hyper-parameters (lr, initial lr, momentum, ...) and, per parameter (numbered across groups in
// group order), its step count and state tensors (SGD momentum_buffer; AdamW exp_avg, exp_avg_sq,
// max_exp_avg_sq). Tensors are read back to host memory exactly (f32 bits), so a run resumed from
// a saved state continues bit for bit. Saving reads back (await); call it between steps only.
// AdamW's step counts kept on the device under a GradScaler are read back here too (syncSteps).
import { fromArray, type Tensor } from '../tensor';
import { hostTensor, type HostTensor } from '../checkpoint/host-tensor';
import { AdamW, type AdamWState } from './adamw';
import { SGD, type SgdState } from './sgd';

export type OptimizerKind = 'SGD' | 'AdamW';

export interface OptimizerStateDict {
  kind: OptimizerKind;
  /** Per group: its options (everything but `params`) and how many parameters it holds. */
  groups: { options: Record<string, unknown>; numParams: number; shapes: number[][] }[];
  /** Step count per parameter index (parameters without state are absent). */
  steps: Record<string, number>;
  /** `state.<index>.<name>` -> host tensor. */
  tensors: Map<string, HostTensor>;
}

type AnyOpt = SGD | AdamW;

function kindOf(opt: AnyOpt): OptimizerKind {
  if (opt instanceof SGD) return 'SGD';
  if (opt instanceof AdamW) return 'AdamW';
  throw new Error(`optimizer state: unsupported optimizer ${(opt as object).constructor.name} (SGD or AdamW)`);
}

async function toHost(t: Tensor): Promise<HostTensor> {
  const data = await t.data();
  if (!(data instanceof Float32Array)) throw new Error(`optimizer state: expected an f32 state tensor, got ${t.dtype}`);
  return hostTensor('F32', [...t.shape], data);
}

/** Everything needed to continue optimizing exactly where `opt` is now. */
export async function optimizerStateDict(opt: AnyOpt): Promise<OptimizerStateDict> {
  const kind = kindOf(opt);
  const groups: OptimizerStateDict['groups'] = [];
  const steps: Record<string, number> = {};
  const tensors = new Map<string, HostTensor>();
  if (opt instanceof AdamW) await opt.syncSteps();
  let index = 0;
  for (const g of opt.paramGroups) {
    const { params, ...options } = g as unknown as { params: Tensor[] } & Record<string, unknown>;
    groups.push({ options: structuredClone(options), numParams: params.length, shapes: params.map((p) => [...p.shape]) });
    for (const p of params) {
      const i = index++;
      if (kind === 'SGD') {
        const s = (opt as SGD).stateOf(p);
        if (!s) continue;
        steps[i] = s.step;
        if (s.momentumBuffer) tensors.set(`state.${i}.momentum_buffer`, await toHost(s.momentumBuffer));
      } else {
        const s = (opt as AdamW).stateOf(p);
        if (!s) continue;
        steps[i] = s.step;
        tensors.set(`state.${i}.exp_avg`, await toHost(s.expAvg));
        tensors.set(`state.${i}.exp_avg_sq`, await toHost(s.expAvgSq));
        if (s.maxExpAvgSq) tensors.set(`state.${i}.max_exp_avg_sq`, await toHost(s.maxExpAvgSq));
      }
    }
  }
  return { kind, groups, steps, tensors };
}

function upload(sd: OptimizerStateDict, key: string, shape: readonly number[]): Tensor {
  const h = sd.tensors.get(key);
  if (!h) throw new Error(`optimizer state: '${key}' is missing`);
  if (h.dtype !== 'F32') throw new Error(`optimizer state: '${key}' is ${h.dtype}, expected F32`);
  if (h.shape.length !== shape.length || h.shape.some((n, i) => n !== shape[i])) {
    throw new Error(`optimizer state: '${key}' has shape [${h.shape}], its parameter has [${shape}]`);
  }
  return fromArray(h.data, shape).keep();
}

/**
 * Restore a state saved by optimizerStateDict into an optimizer built over the same parameters in
 * the same groups (as torch, parameters are matched by position; shapes are checked). Group
 * options (lr, initial lr, momentum, weight decay...) are taken from the saved state.
 */
export function loadOptimizerStateDict(opt: AnyOpt, sd: OptimizerStateDict): void {
  const kind = kindOf(opt);
  if (sd.kind !== kind) throw new Error(`optimizer state: saved for ${sd.kind}, loading into ${kind}`);
  if (sd.groups.length !== opt.paramGroups.length) {
    throw new Error(`optimizer state: saved with ${sd.groups.length} parameter groups, the optimizer has ${opt.paramGroups.length}`);
  }
  sd.groups.forEach((sg, gi) => {
    const g = opt.paramGroups[gi]!;
    if (sg.numParams !== g.params.length) {
      throw new Error(`optimizer state: group ${gi} was saved with ${sg.numParams} parameters, the optimizer's has ${g.params.length}`);
    }
    g.params.forEach((p, j) => {
      const s = sg.shapes[j]!;
      if (s.length !== p.shape.length || s.some((n, k) => n !== p.shape[k])) {
        throw new Error(`optimizer state: group ${gi} parameter ${j}${p.name ? ` (${p.name})` : ''} was saved with shape [${s}], now [${p.shape}]`);
      }
    });
  });
  let index = 0;
  sd.groups.forEach((sg, gi) => {
    const g = opt.paramGroups[gi]! as unknown as Record<string, unknown> & { params: Tensor[] };
    for (const [k, v] of Object.entries(sg.options)) g[k] = structuredClone(v);
    for (const p of g.params) {
      const i = index++;
      const step = sd.steps[i];
      if (step === undefined) continue;
      if (kind === 'SGD') {
        const key = `state.${i}.momentum_buffer`;
        const s: SgdState = { step, momentumBuffer: sd.tensors.has(key) ? upload(sd, key, p.shape) : null };
        (opt as SGD).setStateOf(p, s);
      } else {
        const maxKey = `state.${i}.max_exp_avg_sq`;
        const s: AdamWState = {
          step,
          expAvg: upload(sd, `state.${i}.exp_avg`, p.shape),
          expAvgSq: upload(sd, `state.${i}.exp_avg_sq`, p.shape),
          maxExpAvgSq: sd.tensors.has(maxKey) ? upload(sd, maxKey, p.shape) : null,
        };
        (opt as AdamW).setStateOf(p, s);
      }
    }
  });
}

/** The non-tensor part as JSON text (for a checkpoint's metadata) and back. */
export function optimizerStateMeta(sd: OptimizerStateDict): string {
  return JSON.stringify({ kind: sd.kind, groups: sd.groups, steps: sd.steps });
}

export function optimizerStateFromParts(meta: string, tensors: Map<string, HostTensor>): OptimizerStateDict {
  const m = JSON.parse(meta) as Omit<OptimizerStateDict, 'tensors'>;
  if ((m.kind !== 'SGD' && m.kind !== 'AdamW') || !Array.isArray(m.groups) || typeof m.steps !== 'object') {
    throw new Error('optimizer state: metadata is not an optimizer state (expected kind, groups and steps)');
  }
  return { ...m, tensors };
}
