// Training checkpoints in the layout of Detectron2's PeriodicCheckpointer, with safetensors
// instead of pickles:
//   <dir>/model_0000099.safetensors         model weights (+ metadata: iteration)
//   <dir>/model_0000099.state.safetensors   optimizer state tensors (+ metadata: optimizer groups
//                                           and steps, scheduler iteration, training iteration, seed)
//   <dir>/last_checkpoint                   the name of the newest weights file
// Every file is written to a temporary name and renamed, state first, weights second and
// last_checkpoint last: a crash at any point leaves last_checkpoint naming a complete checkpoint.
// Writes are durable and checked (runtime/durable-write.ts), and both safetensors files are re-read
// from disk (header, offsets, file size) before last_checkpoint moves to them. Temporary files a
// killed run left behind are removed when training starts again and at every save.
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../../engine/nn/module';
import type { Tensor } from '../../engine/tensor';
import { hostTensor, type HostTensor } from '../../engine/checkpoint/host-tensor';
import { readSafetensors, verifySafetensorsFile, writeSafetensors } from '../../engine/checkpoint/safetensors';
import { writeFileAtomic } from '../../engine/checkpoint/atomic-write';
import { loadCheckpoint } from '../../engine/checkpoint/load';
import type { SGD } from '../../engine/optim/sgd';
import type { AdamW } from '../../engine/optim/adamw';
import { loadOptimizerStateDict, optimizerStateDict, optimizerStateFromParts, optimizerStateMeta } from '../../engine/optim/state';
import type { GradScaler, GradScalerState } from '../../engine/optim/grad-scaler';
import { InputError, UserError, WriteError } from '../../runtime/errors';
import { removeStaleTemps } from '../../runtime/durable-write';

export const LAST_CHECKPOINT = 'last_checkpoint';
const FORMAT = 'cellgpu-train-checkpoint-v1';

/** Detectron2's names: model_{iteration:07d} for periodic saves, model_final at the end. */
export function checkpointName(iteration: number | 'final'): string {
  return iteration === 'final' ? 'model_final' : `model_${String(iteration).padStart(7, '0')}`;
}

async function tensorToHost(t: Tensor, key: string): Promise<HostTensor> {
  const data = await t.data();
  if (data instanceof Float32Array) return hostTensor('F32', [...t.shape], data);
  // PyTorch keeps BatchNorm's batch counter as int64: save it so, for a strict load in Detectron2.
  if (data instanceof Int32Array && key.endsWith('num_batches_tracked')) return hostTensor('I64', [...t.shape], BigInt64Array.from(data, (v) => BigInt(v)));
  if (data instanceof Int32Array) return hostTensor('I32', [...t.shape], data);
  throw new Error(`checkpoint: cannot save '${key}' of dtype ${t.dtype}`);
}

/** The model's state dict (parameters and persistent buffers) read back to host memory. */
export async function modelStateToHost(model: Module): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of model.stateDict()) out.set(k, await tensorToHost(t, k));
  return out;
}

export interface TrainingState {
  /** The last completed iteration (training continues at iteration + 1). */
  iteration: number;
  seed: number;
  /** The scheduler's iteration (its lastIter) when saved. */
  schedulerIter: number;
}

export interface SaveOptions {
  dir: string;
  name: string;
  model: Module;
  optimizer: SGD | AdamW;
  state: TrainingState;
  /** Mixed precision: the GradScaler, stored as "grad_scaler" (torch's state_dict) in the state file. */
  gradScaler?: GradScaler | null;
}

/** The files saveCheckpoint writes (whose stale temporaries it may remove). */
const isCheckpointFile = (name: string): boolean => name === LAST_CHECKPOINT || /^model_\w+(\.state)?\.safetensors$/.test(name);

/** Removes the temporary checkpoint files a killed save left in `dir` (not this process's own);
 *  returns their names. */
export function removeStaleCheckpointTemps(dir: string): string[] {
  return removeStaleTemps(dir, isCheckpointFile);
}

/** Save weights + optimizer/scheduler/iteration and point last_checkpoint at them once both
 *  files have been re-read from disk. */
export async function saveCheckpoint(o: SaveOptions): Promise<string> {
  await fs.mkdir(o.dir, { recursive: true });
  removeStaleCheckpointTemps(o.dir); // a killed save's leftovers
  const weights = await modelStateToHost(o.model);
  const opt = await optimizerStateDict(o.optimizer);
  const weightsFile = `${o.name}.safetensors`;
  await writeSafetensors(join(o.dir, `${o.name}.state.safetensors`), opt.tensors, {
    format: FORMAT,
    optimizer: optimizerStateMeta(opt),
    training: JSON.stringify(o.state),
    ...(o.gradScaler ? { grad_scaler: JSON.stringify(await o.gradScaler.stateDict()) } : {}),
  });
  await writeSafetensors(join(o.dir, weightsFile), weights, { format: FORMAT, iteration: String(o.state.iteration) });
  for (const f of [join(o.dir, `${o.name}.state.safetensors`), join(o.dir, weightsFile)]) {
    try {
      verifySafetensorsFile(f);
    } catch (err) {
      const what = err instanceof InputError ? `${err.where ? `${err.where}: ` : ''}${err.problem}` : (err as Error).message;
      throw new WriteError(f, `it does not read back as a complete checkpoint (${what}); ${LAST_CHECKPOINT} still names the previous one`, { cause: err });
    }
  }
  await writeFileAtomic(join(o.dir, LAST_CHECKPOINT), new TextEncoder().encode(weightsFile));
  return join(o.dir, weightsFile);
}

/** The weights file last_checkpoint names, or null when there is none. */
export async function lastCheckpoint(dir: string): Promise<string | null> {
  const f = join(dir, LAST_CHECKPOINT);
  if (!existsSync(f)) return null;
  const name = (await fs.readFile(f, 'utf8')).trim();
  if (!name) throw new InputError(f, undefined, 'is empty; expected the file name of the newest checkpoint');
  const file = join(dir, name);
  if (!existsSync(file)) throw new InputError(f, undefined, `names ${name}, which does not exist in ${dir}`);
  return file;
}

/** Restore model weights (strict), optimizer state, the GradScaler's state (when both the run and
 *  the checkpoint have one) and the training state from a checkpoint written by saveCheckpoint. */
export async function resumeFromCheckpoint(weightsFile: string, model: Module, optimizer: SGD | AdamW, gradScaler: GradScaler | null = null): Promise<TrainingState> {
  const stateFile = weightsFile.replace(/\.safetensors$/, '.state.safetensors');
  if (!existsSync(stateFile)) throw new InputError(weightsFile, undefined, `has no optimizer state file ${stateFile}; cannot resume (use MODEL.WEIGHTS to fine-tune from weights alone)`);
  const weights = await readSafetensors(weightsFile);
  const st = await readSafetensors(stateFile);
  if (st.metadata.format !== FORMAT || !st.metadata.optimizer || !st.metadata.training) {
    throw new InputError(stateFile, '__metadata__', `is not a ${FORMAT} state file`);
  }
  model.loadStateDict(weights.tensors, { strict: true });
  loadOptimizerStateDict(optimizer, optimizerStateFromParts(st.metadata.optimizer, st.tensors));
  if (gradScaler && st.metadata.grad_scaler) gradScaler.loadStateDict(JSON.parse(st.metadata.grad_scaler) as GradScalerState);
  const state = JSON.parse(st.metadata.training) as TrainingState;
  if (!Number.isInteger(state.iteration) || !Number.isInteger(state.seed)) throw new InputError(stateFile, '__metadata__.training', 'needs integer iteration and seed');
  return state;
}

export interface FineTuneReport {
  file: string;
  loaded: number;
  /** Model tensors given their checkpoint value. */
  loadedKeys: string[];
  /** Model tensors (parameters and buffers) the checkpoint does not have: left at initialisation. */
  missing: string[];
  /** Checkpoint tensors the model does not have (pixel_mean/std are not counted: ignored). */
  unexpected: string[];
  /** Names of the tensors skipped for their shape (also left at initialisation). */
  skippedShape: string[];
  /** The same with both shapes. */
  shapeMismatches: { key: string; checkpoint: number[]; model: number[] }[];
  /** Every model tensor left at initialisation: missing + skipped for shape, in the model's order. */
  leftAtInit: string[];
}

/**
 * MODEL.WEIGHTS for fine-tuning, as fvcore's Checkpointer loads it: any checkpoint format
 * engine/checkpoint reads (.safetensors, .pth, .pkl), a leading 'module.' stripped, pixel_mean/std
 * ignored, non-strict, tensors whose shape differs (class-count-dependent layers) skipped with a
 * warning. Weights only: the optimizer and the iteration start fresh.
 */
export async function loadPretrainedWeights(file: string, model: Module, warn: (msg: string) => void = console.warn): Promise<FineTuneReport> {
  if (!existsSync(file)) throw new UserError(`MODEL.WEIGHTS ${file} does not exist`);
  const ck = await loadCheckpoint(file);
  const tensors = new Map<string, HostTensor>();
  for (const [k, t] of ck.tensors) {
    const key = k.startsWith('module.') ? k.slice('module.'.length) : k;
    if (key === 'pixel_mean' || key === 'pixel_std') continue;
    tensors.set(key, t);
  }
  const r = model.loadStateDict(tensors, { strict: false });
  for (const m of r.shapeMismatches) {
    warn(`Skip loading parameter '${m.key}' to the model due to incompatible shapes: [${m.got}] in the checkpoint but [${m.expected}] in the model! You might want to double check if this is expected.`);
  }
  if (r.missingKeys.length) warn(`Some model parameters or buffers are not found in the checkpoint: ${r.missingKeys.slice(0, 10).join(', ')}${r.missingKeys.length > 10 ? `, ... (${r.missingKeys.length})` : ''}`);
  if (r.unexpectedKeys.length) warn(`The checkpoint contains keys that are not used by the model: ${r.unexpectedKeys.slice(0, 10).join(', ')}${r.unexpectedKeys.length > 10 ? `, ... (${r.unexpectedKeys.length})` : ''}`);
  const skipped = new Set(r.shapeMismatches.map((m) => m.key));
  const missing = new Set(r.missingKeys);
  const own = [...model.stateDict().keys()];
  const loadedKeys = own.filter((k) => !skipped.has(k) && !missing.has(k));
  return {
    file,
    loaded: loadedKeys.length,
    loadedKeys,
    missing: r.missingKeys,
    unexpected: r.unexpectedKeys,
    skippedShape: r.shapeMismatches.map((m) => m.key),
    shapeMismatches: r.shapeMismatches.map((m) => ({ key: m.key, checkpoint: m.got, model: m.expected })),
    leftAtInit: own.filter((k) => skipped.has(k) || missing.has(k)),
  };
}

export const WEIGHTS_REPORT = 'weights_report.json';

/** One line: how many tensors were loaded, skipped and left at initialisation. */
export function weightsReportSummary(r: FineTuneReport): string {
  return (
    `MODEL.WEIGHTS ${r.file}: loaded ${r.loaded} tensors; skipped ${r.shapeMismatches.length} for shape and ${r.unexpected.length} not in the model; ` +
    `${r.leftAtInit.length} model tensors left at initialisation`
  );
}

/** What a strict load refuses: shape mismatches, checkpoint tensors the model lacks, model tensors
 *  the checkpoint lacks; each as one short phrase. */
export function weightsReportProblems(r: FineTuneReport): string[] {
  return [
    ...r.shapeMismatches.map((m) => `${m.key}: shape [${m.checkpoint}] in the checkpoint, [${m.model}] in the model`),
    ...r.unexpected.map((k) => `${k}: not in the model`),
    ...r.missing.map((k) => `${k}: not in the checkpoint`),
  ];
}

/**
 * MODEL.WEIGHTS for training: loadPretrainedWeights, then OUTPUT_DIR/weights_report.json (loaded,
 * skipped with both shapes, not in the model, left at initialisation) and its summary line. With
 * `strict`, any problem is a UserError listing the first few (the report is written first).
 */
export async function loadWeightsForTraining(file: string, model: Module, outputDir: string, o: { strict?: boolean; log?: (line: string) => void } = {}): Promise<FineTuneReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const r = await loadPretrainedWeights(file, model, (m) => log(`warning: ${m}`));
  const reportFile = join(outputDir, WEIGHTS_REPORT);
  await fs.mkdir(outputDir, { recursive: true });
  await writeFileAtomic(
    reportFile,
    new TextEncoder().encode(
      JSON.stringify(
        { file: r.file, summary: weightsReportSummary(r), loaded: r.loadedKeys, skipped_shape: r.shapeMismatches, not_in_model: r.unexpected, left_at_init: r.leftAtInit, missing_in_checkpoint: r.missing },
        null,
        1,
      ) + '\n',
    ),
  );
  log(`${weightsReportSummary(r)} (${reportFile})`);
  if (o.strict) {
    const problems = weightsReportProblems(r);
    if (problems.length) {
      throw new UserError(`--strict: MODEL.WEIGHTS ${r.file} does not fit the model (${problems.length} problems; see ${reportFile}): ${problems.slice(0, 4).join('; ')}${problems.length > 4 ? '; ...' : ''}`);
    }
  }
  return r;
}
