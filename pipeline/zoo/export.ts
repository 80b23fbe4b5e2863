// Demo-model export: a model's weights as a half-size safetensors file. Every floating tensor
// (F32, F64) is stored as F16, rounded to nearest, ties to even (engine/checkpoint/f16.ts; F64 is
// rounded to f32 first, as a cast from a float32 tensor would); F16 tensors are kept; integer and
// bool tensors (num_batches_tracked, ...) are kept bit for bit. Loading the file into the f32 model
// through the normal path (`cellseg predict --weights`, MODEL.WEIGHTS: loadPretrainedWeights ->
// Module.loadStateDict, which widens F16 to f32) gives exactly the f16-rounded values.
// A finite value beyond the F16 range (|x| > 65504) is an error naming the tensor, not a silent inf.
import * as path from 'node:path';
import { mkdirSync, statSync } from 'node:fs';
import { UserError } from '../../runtime/errors';
import { floatToHalfBits } from '../../engine/checkpoint/f16';
import { hostTensor, numel, type HostTensor } from '../../engine/checkpoint/host-tensor';
import { loadCheckpoint } from '../../engine/checkpoint/load';
import { writeSafetensors } from '../../engine/checkpoint/safetensors';
import { Module } from '../../engine/nn/module';
import { modelStateToHost } from '../engine/checkpoint';

export const ZOO_FORMAT = 'cellgpu-zoo-f16-v1';

export type StateDictLike = Map<string, HostTensor> | Record<string, HostTensor>;

export interface ExportSummary {
  file: string;
  tensors: number;
  /** Tensors stored as F16 (converted or already F16). */
  halfTensors: number;
  /** Integer / bool tensors kept as they were. */
  keptTensors: number;
  values: number;
  /** Non-zero values that became (signed) zero in F16 (|x| < 2^-25). */
  flushedToZero: number;
  /** Largest |f16(x) - x| / |x| over normal-range values (<= 2^-11 by construction). */
  maxRelError: number;
  bytes: number;
}

const HALF_INF = 0x7c00;

/** One tensor in F16 (a new HostTensor); integer and bool tensors are returned as they are. */
export function toHalf(name: string, t: HostTensor, stats?: { flushed: number; maxRel: number }): HostTensor {
  if (t.dtype !== 'F32' && t.dtype !== 'F64') return t;
  const src = t.data;
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    const h = floatToHalfBits(v);
    if ((h & 0x7fff) === HALF_INF && Number.isFinite(v) && Number.isFinite(Math.fround(v))) {
      throw new UserError(`export: tensor '${name}' element ${i} = ${v} is outside the F16 range (|x| <= 65504); it cannot be stored as F16`);
    }
    if (stats) {
      if ((h & 0x7fff) === 0 && v !== 0) stats.flushed++;
      const a = Math.abs(v);
      if (a >= 2 ** -14 && a <= 65504) stats.maxRel = Math.max(stats.maxRel, Math.abs(halfToNumber(h) - Math.fround(v)) / Math.abs(Math.fround(v)));
    }
    out[i] = h;
  }
  return hostTensor('F16', t.shape, out);
}

function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * frac * 2 ** -24;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

async function stateOf(source: Module | StateDictLike): Promise<Map<string, HostTensor>> {
  if (source instanceof Module) return modelStateToHost(source);
  return source instanceof Map ? source : new Map(Object.entries(source));
}

/**
 * Writes `source` (a model, or a state dict of host tensors) to `outFile` as safetensors with
 * every floating tensor in F16. `metadata` goes into the file's __metadata__ next to
 * format = cellgpu-zoo-f16-v1.
 */
export async function exportModelF16(source: Module | StateDictLike, outFile: string, metadata: Record<string, string> = {}): Promise<ExportSummary> {
  if (!outFile.endsWith('.safetensors')) throw new UserError(`export: output ${outFile} must end in .safetensors`);
  const state = await stateOf(source);
  if (state.size === 0) throw new UserError('export: the state dict holds no tensors');
  const stats = { flushed: 0, maxRel: 0 };
  const out = new Map<string, HostTensor>();
  let half = 0;
  let values = 0;
  for (const [name, t] of state) {
    const h = toHalf(name, t, stats);
    if (h.dtype === 'F16') half++;
    values += numel(t.shape);
    out.set(name, h);
  }
  mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
  await writeSafetensors(outFile, out, { ...metadata, format: ZOO_FORMAT });
  return {
    file: outFile,
    tensors: out.size,
    halfTensors: half,
    keptTensors: out.size - half,
    values,
    flushedToZero: stats.flushed,
    maxRelError: stats.maxRel,
    bytes: statSync(outFile).size,
  };
}

/** `cellseg export-model`: any checkpoint engine/checkpoint reads -> F16 safetensors. */
export async function exportWeightsFile(input: string, output: string): Promise<ExportSummary & { inputBytes: number; sourceFormat: string }> {
  if (path.resolve(input) === path.resolve(output)) throw new UserError(`export-model: output ${output} would overwrite the input`);
  const ck = await loadCheckpoint(input);
  if (ck.tensors.size === 0) throw new UserError(`export-model: ${input} holds no tensors`);
  const meta: Record<string, string> = { exported_from: path.basename(input), source_format: ck.format };
  if (ck.metadata.iteration !== undefined) meta.iteration = ck.metadata.iteration;
  const s = await exportModelF16(ck.tensors, output, meta);
  return { ...s, inputBytes: statSync(input).size, sourceFormat: ck.format };
}

export { readModelCard, validateModelCard, writeModelCard, type ModelCard } from './card';
