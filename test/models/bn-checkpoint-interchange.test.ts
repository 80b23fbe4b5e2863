// Detectron2 interchange of a CenterMask-Lite V-19-slim-eSE checkpoint with MODEL.VOVNET.NORM BN
// (fixture from scripts/fixtures/make_bn_checkpoint_fixture.py: the real CenterMask2 key layout,
// torch.save({'model': ..., 'optimizer': ..., 'scheduler': ..., 'iteration': 599}) as Detectron2's
// DetectionCheckpointer writes it, num_batches_tracked as 0-d int64; gzipped, since the .pth is
// 49 MB). The .pth loads strictly into cellgpu's model; `cellseg predict --weights` on it and on the
// safetensors `cellseg convert-weights` makes of it give the same detections; a cellgpu training
// checkpoint of the model keeps num_batches_tracked through save and resume.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { init, noGrad, randn } from '../../engine';
import { loadCheckpoint, type LoadedCheckpoint } from '../../engine/checkpoint/load';
import { readSafetensors } from '../../engine/checkpoint/safetensors';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { SGD } from '../../engine/optim/sgd';
import { CenterMask, type ImageInput, type Instances } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { BatchNorm2d } from '../../models/layers';
import { convertWeights } from '../../pipeline/zoo/convert-weights';
import { loadModelForInference } from '../../pipeline/engine/predictor';
import { loadPretrainedWeights, resumeFromCheckpoint, saveCheckpoint } from '../../pipeline/engine/checkpoint';
import { Rng } from '../util';

const FIXTURE = new URL('../fixtures/checkpoints/bn_centermask_lite_V19slim', import.meta.url).pathname;

interface MetaTensor {
  name: string;
  dtype: 'F32' | 'I64';
  shape: number[];
  sum_f64?: number;
  first?: number;
  value?: number;
}
interface Meta {
  config: string;
  overrides: string[];
  iteration: number;
  tensors: MetaTensor[];
}

const meta = JSON.parse(readFileSync(`${FIXTURE}.json`, 'utf8')) as Meta;
const NBT = '.num_batches_tracked';
let dir: string;
let pth: string;
let ckpt: LoadedCheckpoint;

const cfgWith = (...extra: string[]) => loadConfig(meta.config, [...meta.overrides, ...extra]);

/** The model's state read back to the host: f32 values, and num_batches_tracked as a number. */
async function modelState(m: CenterMask): Promise<Map<string, Float32Array | number>> {
  const out = new Map<string, Float32Array | number>();
  for (const [k, t] of m.stateDict()) out.set(k, t.dtype === 'i32' ? await t.item() : ((await t.data()) as Float32Array));
  return out;
}

/** Bit-exact equality of two state values (vitest's deep equality is far too slow on 12 M values). */
function expectSame(got: Float32Array | number | undefined, want: Float32Array | number, what: string): void {
  if (typeof want === 'number') {
    expect(got, what).toBe(want);
    return;
  }
  expect(got, what).toBeInstanceOf(Float32Array);
  const g = got as Float32Array;
  expect(g.length, what).toBe(want.length);
  const same = Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength));
  expect(same, `${what}: values differ`).toBe(true);
}

function hostValue(t: HostTensor): Float32Array | number {
  if (t.dtype === 'I64' || t.dtype === 'I32') {
    expect(t.shape).toEqual([]);
    return Number(t.data[0]);
  }
  expect(t.dtype).toBe('F32');
  return t.data as Float32Array;
}

beforeAll(async () => {
  await init();
  dir = mkdtempSync(join(tmpdir(), 'cellgpu-bn-ckpt-'));
  pth = join(dir, 'model_0000599.pth');
  writeFileSync(pth, gunzipSync(readFileSync(`${FIXTURE}.pth.gz`)));
  ckpt = await loadCheckpoint(pth);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Detectron2 BN checkpoint (.pth) -> cellgpu', () => {
  it('reads as a torch zip checkpoint: the model dict, int64 0-d num_batches_tracked, the rest listed as ignored', () => {
    expect(ckpt.format).toBe('torch-zip');
    expect([...ckpt.tensors.keys()]).toEqual(meta.tensors.map((t) => t.name));
    expect(ckpt.ignored).toEqual(expect.arrayContaining(["optimizer (outside 'model')", "scheduler (outside 'model')", "iteration (outside 'model')"]));
    expect(meta.tensors.filter((t) => t.name.endsWith(NBT)).length).toBe(19);
    for (const e of meta.tensors) {
      const t = ckpt.tensors.get(e.name)!;
      expect([t.dtype, t.shape], e.name).toEqual([e.dtype, e.shape]);
      if (e.dtype === 'I64') {
        expect(t.data[0], e.name).toBe(BigInt(e.value!));
      } else {
        const d = t.data as Float32Array;
        let s = 0;
        let a = 0;
        for (const v of d) {
          s += v;
          a += Math.abs(v);
        }
        expect(d[0], e.name).toBe(e.first);
        expect(Math.abs(s - e.sum_f64!), `${e.name} sum`).toBeLessThanOrEqual(1e-9 * a + 1e-12);
      }
    }
  });

  it('loads STRICTLY into CenterMask with MODEL.VOVNET.NORM BN, every value exact', async () => {
    const model = new CenterMask(cfgWith());
    const own = [...model.stateDict()];
    expect(own.map(([k]) => k)).toEqual(meta.tensors.map((t) => t.name));
    for (const [k, t] of own) expect([...t.shape], k).toEqual(ckpt.tensors.get(k)!.shape);
    model.loadStateDict(ckpt.tensors, { strict: true });
    const got = await modelState(model);
    for (const [k, t] of ckpt.tensors) expectSame(got.get(k), hostValue(t), k);
    model.dispose();

    // The same file does not fit the FrozenBN model: strict loading names the extra keys.
    const frozen = new CenterMask(loadConfig(meta.config, meta.overrides.slice(0, 4)));
    expect(() => frozen.loadStateDict(ckpt.tensors, { strict: true })).toThrow(/unexpected keys.*stem_1\/norm\.num_batches_tracked/);
    frozen.dispose();
  }, 120_000);

  it('MODEL.WEIGHTS / --weights loading of the .pth warns about nothing', async () => {
    const model = new CenterMask(cfgWith());
    const warn = vi.fn();
    const r = await loadPretrainedWeights(pth, model, warn);
    expect(warn).not.toHaveBeenCalled();
    expect([r.loaded, r.missing, r.unexpected, r.skippedShape]).toEqual([184, [], [], []]);
    model.dispose();
  }, 120_000);
});

describe('predict --weights: .pth and its convert-weights safetensors', () => {
  it('convert-weights keeps int64 0-d num_batches_tracked; inference gives the same detections', async () => {
    const st = join(dir, 'model_0000599.safetensors');
    const summary = await convertWeights(pth, st);
    expect([summary.format, summary.tensors, summary.values]).toEqual(['torch-zip', 184, 12_278_440]);
    expect(summary.ignored).toContain("iteration (outside 'model')");
    const file = await readSafetensors(st);
    for (const [k, t] of ckpt.tensors) {
      const u = file.tensors.get(k)!;
      expect([u.dtype, u.shape], k).toEqual([t.dtype, t.shape]);
      expectSame(hostValue(u), hostValue(t), k);
    }

    const cfg = cfgWith('MODEL.FCOS.INFERENCE_TH_TEST', '0.0', 'MODEL.FCOS.POST_NMS_TOPK_TEST', '12');
    const rng = new Rng(21);
    const [h, w] = [64, 96];
    const gray = Float32Array.from({ length: h * w }, () => rng.uniform(0, 255));
    const image = new Float32Array(3 * h * w);
    for (let c = 0; c < 3; c++) image.set(gray, c * h * w);
    const input: ImageInput = { image, height: h, width: w, origHeight: h, origWidth: w };
    const run = async (weights: string): Promise<Instances> => {
      const model = await loadModelForInference(cfg, weights);
      const [r] = await model.inference([input]);
      (model as unknown as CenterMask).dispose();
      return r!;
    };
    const a = await run(pth);
    const b = await run(st);
    expect(a.scores.length).toBeGreaterThan(0);
    expect(b.scores.length).toBe(a.scores.length);
    expect(Array.from(b.classes)).toEqual(Array.from(a.classes));
    a.boxes.forEach((v, i) => expect(Math.abs(b.boxes[i]! - v), `box value ${i}`).toBeLessThanOrEqual(1e-5));
    a.scores.forEach((v, i) => expect(Math.abs(b.scores[i]! - v), `score ${i}`).toBeLessThanOrEqual(1e-5));
    a.maskScores.forEach((v, i) => expect(Math.abs(b.maskScores[i]! - v), `mask score ${i}`).toBeLessThanOrEqual(1e-5));
  }, 300_000);
});

describe('cellgpu training checkpoint of the BN model', () => {
  it('save and resume keep num_batches_tracked and the running statistics', async () => {
    const model = new CenterMask(cfgWith());
    model.loadStateDict(ckpt.tensors, { strict: true });
    // One training-mode backbone forward: every BN counts a batch and moves its statistics.
    model.train();
    noGrad(() => model.backbone.forward(randn([1, 3, 64, 64], 3)));
    const bns = model.namedModules().filter(([, m]) => m instanceof BatchNorm2d);
    expect(bns.length).toBe(19);
    const state = await modelState(model);
    for (const e of meta.tensors.filter((t) => t.name.endsWith(NBT))) expect(state.get(e.name), e.name).toBe(e.value! + 1);

    const out = join(dir, 'train');
    const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const file = await saveCheckpoint({ dir: out, name: 'model_0000600', model, optimizer, state: { iteration: 600, seed: 1, schedulerIter: 600 } });
    const saved = await readSafetensors(file);
    for (const e of meta.tensors.filter((t) => t.name.endsWith(NBT))) {
      const t = saved.tensors.get(e.name)!;
      // torch loads either integer dtype into a BatchNorm buffer (load_state_dict copies, casting);
      // shape [] is a 0-d tensor, as torch stores it.
      expect(['I32', 'I64'], e.name).toContain(t.dtype);
      expect(t.shape, e.name).toEqual([]);
      expect(Number(t.data[0]), e.name).toBe(e.value! + 1);
    }

    const fresh = new CenterMask(cfgWith());
    const it = await resumeFromCheckpoint(file, fresh, new SGD(fresh.parameters(), { lr: 0.01, momentum: 0.9 }));
    expect(it.iteration).toBe(600);
    const back = await modelState(fresh);
    expect([...back.keys()]).toEqual([...state.keys()]);
    for (const [k, v] of state) expectSame(back.get(k), v, k);

    // And a cellgpu checkpoint loads as MODEL.WEIGHTS too (through the generic loader).
    const again = new CenterMask(cfgWith());
    const r = await loadPretrainedWeights(file, again, () => {});
    expect([r.missing, r.unexpected, r.skippedShape]).toEqual([[], [], []]);
    for (const [k, v] of await modelState(again)) expectSame(v, state.get(k)!, k);
    model.dispose();
    fresh.dispose();
    again.dispose();
  }, 300_000);
});
