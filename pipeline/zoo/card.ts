// The model card that travels with a demo model in models/zoo: what was trained, on what data,
// for how long, on which hardware, how well it scores and the command that reproduces it.
// Validated on write and on read; a malformed card is an InputError naming the file and the key.
import { existsSync } from 'node:fs';
import { readJsonFile } from '../io/json';
import { InputError } from '../../runtime/errors';
import { writeJsonAtomic } from '../io/atomic';

/** The shipped demo model (what `cellseg run` starts from): its card names the config and the weights. */
export const DEMO_MODEL_CARD = 'models/zoo/centermask_lite_V_19_slim_synth.json';

export interface ModelCard {
  name: string;
  /** Config file the model was trained with (e.g. configs/sartorius_centermask_lite_V_19_slim.yaml). */
  config: string;
  /** The weights file (e.g. models/zoo/NAME.safetensors). */
  weights: string;
  data: {
    /** e.g. "cellseg synth" or "sartorius". */
    generator: string;
    seed: number;
    images: number;
  };
  iterations: number;
  /** e.g. "NVIDIA H100 80GB (Dawn/Vulkan)". */
  hardware: string;
  seconds_per_iteration: number;
  metrics: {
    /** COCO segm AP/AP50/... in percent as Detectron2 reports them; null where undefined (-1 / NaN). */
    segm: Record<string, number | null>;
    bbox: Record<string, number | null>;
    /** The Sartorius competition score, 0..1. */
    competition_score: number | null;
  };
  /** The command line that trained the model. */
  command: string;
}

const TOP_KEYS = ['name', 'config', 'weights', 'data', 'iterations', 'hardware', 'seconds_per_iteration', 'metrics', 'command'] as const;
const DATA_KEYS = ['generator', 'seed', 'images'] as const;
const METRIC_KEYS = ['segm', 'bbox', 'competition_score'] as const;

type Obj = Record<string, unknown>;

/** JSON.stringify, except that NaN and the infinities show as themselves (not as null). */
function show(v: unknown): string {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks `value` is a ModelCard; errors name `file` and the key, e.g. `metrics.segm.AP`. */
export function validateModelCard(value: unknown, file: string): ModelCard {
  const fail = (key: string | undefined, problem: string): never => {
    throw new InputError(file, key === undefined ? undefined : `key "${key}"`, problem);
  };
  const exactKeys = (o: Obj, keys: readonly string[], prefix: string) => {
    for (const k of keys) if (!(k in o)) fail(prefix + k, 'is missing');
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail(prefix + k, `is not a model card key (expected ${keys.map((x) => prefix + x).join(', ')})`);
  };
  const str = (o: Obj, k: string, prefix = '') => {
    if (typeof o[k] !== 'string' || (o[k] as string).trim() === '') fail(prefix + k, `must be a non-empty string, got ${show(o[k])}`);
  };
  const int = (o: Obj, k: string, min: number, prefix = '') => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(prefix + k, `must be an integer >= ${min}, got ${show(v)}`);
  };
  const metricMap = (v: unknown, key: string) => {
    if (!isObj(v)) return fail(key, `must be an object of metric name -> number (or null), got ${show(v)}`);
    for (const [k, x] of Object.entries(v)) {
      if (x !== null && (typeof x !== 'number' || !Number.isFinite(x))) fail(`${key}.${k}`, `must be a finite number or null, got ${show(x)}`);
    }
  };

  if (!isObj(value)) return fail(undefined, 'a model card must be a JSON object');
  exactKeys(value, TOP_KEYS, '');
  for (const k of ['name', 'config', 'weights', 'hardware', 'command']) str(value, k);
  int(value, 'iterations', 0);
  const spi = value.seconds_per_iteration;
  if (typeof spi !== 'number' || !Number.isFinite(spi) || spi < 0) fail('seconds_per_iteration', `must be a finite number >= 0, got ${show(spi)}`);

  const data = value.data;
  if (!isObj(data)) return fail('data', `must be an object {generator, seed, images}, got ${show(data)}`);
  exactKeys(data, DATA_KEYS, 'data.');
  str(data, 'generator', 'data.');
  int(data, 'seed', Number.MIN_SAFE_INTEGER, 'data.');
  int(data, 'images', 1, 'data.');

  const m = value.metrics;
  if (!isObj(m)) return fail('metrics', `must be an object {segm, bbox, competition_score}, got ${show(m)}`);
  exactKeys(m, METRIC_KEYS, 'metrics.');
  metricMap(m.segm, 'metrics.segm');
  metricMap(m.bbox, 'metrics.bbox');
  const cs = m.competition_score;
  if (cs !== null && (typeof cs !== 'number' || !Number.isFinite(cs) || cs < 0 || cs > 1)) {
    fail('metrics.competition_score', `must be a number in [0, 1] or null, got ${show(cs)}`);
  }
  return value as unknown as ModelCard;
}

/** Validates and writes the card as JSON (atomically). NaN metrics must be given as null. */
export function writeModelCard(file: string, card: ModelCard): void {
  validateModelCard(card, file); // NaN / Infinity are rejected here (JSON would turn them into null)
  writeJsonAtomic(file, card);
}

export function readModelCard(file: string): ModelCard {
  if (!existsSync(file)) throw new InputError(file, undefined, 'cannot read the model card (file is missing)');
  const value = readJsonFile(file);
  return validateModelCard(value, file);
}
