// F16 demo-model export: a CenterMask-Lite V-19-slim-eSE model (3 classes) exported as F16
// safetensors, loaded back through the normal weights path (loadPretrainedWeights, as predict
// --weights and MODEL.WEIGHTS load) into a fresh f32 model, holds exactly the f16-rounded values
// of every floating tensor and the integer buffers unchanged; the file is about half the f32 one.
// State-dict inputs of every dtype, the F16 range check and `cellseg export-model`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../engine';
import { floatToHalfBits, halfBitsToFloat } from '../../../engine/checkpoint/f16';
import { hostTensor, type HostTensor } from '../../../engine/checkpoint/host-tensor';
import { readSafetensors, writeSafetensors } from '../../../engine/checkpoint/safetensors';
import { manualSeed } from '../../../engine/nn/init';
import { Rng } from '../../../runtime/rng';
import { loadConfig } from '../../../models/config/config';
import { buildTrainableModel } from '../../../pipeline/engine/model';
import { loadPretrainedWeights, modelStateToHost } from '../../../pipeline/engine/checkpoint';
import { exportModelF16, ZOO_FORMAT } from '../../../pipeline/zoo/export';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('zoo');
afterAll(tmp.cleanup);
const ROOT = new URL('../../../', import.meta.url).pathname;
const CONFIG = 'configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml';
const OVERRIDES = ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3'];

const f16round = (v: number) => Math.fround(halfBitsToFloat(floatToHalfBits(v)));

describe('exportModelF16 on CenterMask-Lite V-19-slim-eSE', () => {
  let original: Map<string, HostTensor>;
  let reloaded: Map<string, HostTensor>;
  let f32Bytes: number;
  let f16Bytes: number;
  let loaded: number;

  beforeAll(async () => {
    await init();
    manualSeed(5);
    const cfg = loadConfig(join(ROOT, CONFIG), OVERRIDES);
    const model = buildTrainableModel(cfg);
    // Give every floating tensor (running statistics included) values of many magnitudes, most
    // of them not representable in F16, some in its subnormal range.
    const rng = new Rng(17);
    const state = await modelStateToHost(model);
    const filled = new Map<string, HostTensor>();
    for (const [k, t] of state) {
      if (t.dtype !== 'F32') {
        filled.set(k, t); // integer buffers (none with this config's FrozenBN) are compared as they are
        continue;
      }
      const d = Float32Array.from(t.data, () => rng.normal() * 10 ** Math.floor(rng.uniform(-6, 3)));
      if (k.endsWith('running_var')) for (let i = 0; i < d.length; i++) d[i] = Math.abs(d[i]!);
      filled.set(k, hostTensor('F32', t.shape, d));
    }
    model.loadStateDict(filled);
    original = await modelStateToHost(model);

    const f32File = join(tmp.dir, 'model_f32.safetensors');
    await writeSafetensors(f32File, original);
    const f16File = join(tmp.dir, 'model_f16.safetensors');
    const s = await exportModelF16(model, f16File, { name: 'test' });
    expect(s.tensors).toBe(original.size);
    f32Bytes = statSync(f32File).size;
    f16Bytes = statSync(f16File).size;

    manualSeed(99); // a fresh model with other values
    const fresh = buildTrainableModel(cfg);
    const r = await loadPretrainedWeights(f16File, fresh, () => {});
    expect(r.missing).toEqual([]);
    expect(r.unexpected).toEqual([]);
    expect(r.skippedShape).toEqual([]);
    loaded = r.loaded;
    reloaded = await modelStateToHost(fresh);
  }, 600_000);

  it('stores every floating tensor as F16 and integer buffers as they were', async () => {
    const file = await readSafetensors(join(tmp.dir, 'model_f16.safetensors'));
    expect(file.metadata).toEqual({ name: 'test', format: ZOO_FORMAT });
    for (const [k, t] of original) {
      const got = file.tensors.get(k)!;
      expect(got.shape, k).toEqual(t.shape);
      expect(got.dtype, k).toBe(t.dtype === 'F32' ? 'F16' : t.dtype);
    }
  });

  it('loads into the f32 model as exactly the f16-rounded values', () => {
    expect(loaded).toBe(original.size);
    let values = 0;
    let changed = 0;
    let ints = 0;
    for (const [k, t] of original) {
      const got = reloaded.get(k)!;
      expect(got.dtype, k).toBe(t.dtype);
      if (t.dtype === 'F32') {
        const want = Float32Array.from(t.data, f16round);
        expect(Buffer.from((got.data as Float32Array).buffer).equals(Buffer.from(want.buffer)), k).toBe(true);
        values += want.length;
        for (let i = 0; i < want.length; i++) if (want[i] !== t.data[i]) changed++;
      } else {
        expect(Array.from(got.data as ArrayLike<number>), k).toEqual(Array.from(t.data as ArrayLike<number>));
        ints++;
      }
    }
    expect(values).toBeGreaterThan(1_000_000);
    expect(changed / values, 'most values are not representable in F16').toBeGreaterThan(0.9);
    console.log(`${original.size} tensors (${ints} integer), ${values} floats; f32 file ${f32Bytes} B, f16 file ${f16Bytes} B`);
  });

  it('is about half the size of the f32 file', () => {
    const ratio = f16Bytes / f32Bytes;
    expect(ratio).toBeGreaterThan(0.48);
    expect(ratio).toBeLessThan(0.52);
  });
});

describe('exportModelF16 on state dicts', () => {
  it('F32 and F64 become F16; F16, I64, I32, U8, BOOL are kept bit for bit', async () => {
    const state = new Map<string, HostTensor>([
      ['a', hostTensor('F32', [2, 3], Float32Array.from([0.1, -2.5, 65504, 1e-7, 2e-8, -0]))],
      ['b', hostTensor('F64', [2], Float64Array.from([Math.PI, 1 / 3]))],
      ['c', hostTensor('F16', [2], Uint16Array.from([0x3c00, 0x8001]))],
      ['n', hostTensor('I64', [], BigInt64Array.from([123456789012n]))],
      ['i', hostTensor('I32', [2], Int32Array.from([-1, 7]))],
      ['u', hostTensor('U8', [1], Uint8Array.from([200]))],
      ['z', hostTensor('BOOL', [2], Uint8Array.from([1, 0]))],
    ]);
    const out = join(tmp.dir, 'sd.safetensors');
    const s = await exportModelF16(state, out);
    expect(s).toMatchObject({ tensors: 7, halfTensors: 3, keptTensors: 4, values: 16, flushedToZero: 1 }); // 2e-8 < 2^-25
    expect(s.maxRelError).toBeLessThanOrEqual(2 ** -11);
    const back = (await readSafetensors(out)).tensors;
    expect(Array.from(back.get('a')!.data as Uint16Array)).toEqual([0.1, -2.5, 65504, 1e-7, 2e-8, -0].map(floatToHalfBits));
    expect(Array.from(back.get('a')!.data as Uint16Array, halfBitsToFloat)).toEqual([0.0999755859375, -2.5, 65504, 1.1920928955078125e-7, 0, -0]);
    expect(Array.from(back.get('b')!.data as Uint16Array)).toEqual([floatToHalfBits(Math.PI), floatToHalfBits(1 / 3)]);
    expect(back.get('c')).toEqual(state.get('c'));
    for (const k of ['n', 'i', 'u', 'z']) expect(back.get(k), k).toEqual(state.get(k));
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a finite value beyond the F16 range, naming the tensor, and writes nothing', async () => {
    const out = join(tmp.dir, 'big.safetensors');
    await expect(exportModelF16({ 'head.w': hostTensor('F32', [2], Float32Array.from([1, 70000])) }, out)).rejects.toThrow(
      /tensor 'head\.w' element 1 = 70000 is outside the F16 range/,
    );
    expect(readdirSync(tmp.dir)).not.toContain('big.safetensors');
    await expect(exportModelF16({}, join(tmp.dir, 'x.pth'))).rejects.toThrow(/must end in \.safetensors/);
  });

  it('cellseg export-model: F16 file, about half the size, integers kept', async () => {
    const rng = new Rng(3);
    const input = join(tmp.dir, 'model_final.safetensors');
    await writeSafetensors(
      input,
      { 'backbone.w': hostTensor('F32', [64, 64], Float32Array.from({ length: 4096 }, () => rng.normal())), 'bn.num_batches_tracked': hostTensor('I64', [], BigInt64Array.from([5n])) },
      { iteration: '99' },
    );
    const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), 'export-model', '--weights', input, '--out', 'zoo/demo.safetensors'], { encoding: 'utf8', cwd: tmp.dir });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 tensors, 1 as F16, 1 kept/);
    const out = join(tmp.dir, 'zoo/demo.safetensors');
    const back = await readSafetensors(out);
    expect(back.tensors.get('backbone.w')!.dtype).toBe('F16');
    expect(back.tensors.get('bn.num_batches_tracked')).toEqual({ dtype: 'I64', shape: [], data: BigInt64Array.from([5n]) });
    expect(back.metadata).toEqual({ exported_from: 'model_final.safetensors', source_format: 'safetensors', iteration: '99', format: ZOO_FORMAT });
    expect(statSync(out).size / statSync(input).size).toBeLessThan(0.55);
    const same = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), 'export-model', '--weights', input, '--out', input], { encoding: 'utf8', cwd: tmp.dir });
    expect(same.status).toBe(1);
    expect(same.stderr).toMatch(/would overwrite the input/);
  });
});
