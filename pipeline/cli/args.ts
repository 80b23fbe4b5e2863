// Option parsers shared by the commands: each turns a bad value into a UserError naming the option.
import { InputError, UserError } from '../../runtime/errors';
import { CELL_TYPES, type CellType } from '../data/cell-types';
import { SHAPE_FEATURES, type ShapeFeatures } from '../shape/region-props';

export function parseIntOption(name: string, min: number) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UserError(`${name} must be an integer >= ${min}, got "${v}"`);
    return Number(v);
  };
}

export function parseNumberList(name: string, v: string, length?: number): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n)) || (length !== undefined && nums.length !== length)) {
    throw new UserError(`${name} must be ${length ?? 'a list of'} comma-separated numbers, got "${v}"`);
  }
  return nums;
}

/** `--max-dets 1,100,1000`: COCOeval's three maxDets, positive integers. */
export function parseMaxDets(v: string): number[] {
  const maxDets = parseNumberList('--max-dets', v, 3);
  if (maxDets.some((m) => !Number.isInteger(m) || m < 1)) throw new UserError('--max-dets values must be positive integers');
  return maxDets;
}

/** "a,b,c" in the order shsy5y, astro, cort. */
export function parsePerType(name: string, v: string): Record<CellType, number> {
  const n = parseNumberList(name, v, 3);
  return Object.fromEntries(CELL_TYPES.map((t, i) => [t, n[i]!])) as Record<CellType, number>;
}

/** A number in [0, 1] (`--score-thresh`, `--alpha`). */
export function parseFraction(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || x < 0 || x > 1) throw new UserError(`${name} must be a number in [0, 1], got "${v}"`);
    return x;
  };
}

/** A comma-separated list of shape features (`--shape-min`, `--shape-max`); `dflt` when not given. */
export function parseFeatureList(name: string, v: string | undefined, dflt: (keyof ShapeFeatures)[]): (keyof ShapeFeatures)[] {
  if (v === undefined) return dflt;
  if (v.trim() === '') return [];
  const list = v.split(',').map((s) => s.trim());
  for (const f of list) {
    if (!(SHAPE_FEATURES as readonly string[]).includes(f)) throw new InputError(name, undefined, `unknown feature "${f}"; expected ${SHAPE_FEATURES.join(', ')}`);
  }
  return list as (keyof ShapeFeatures)[];
}

/** Commander's collector for a repeatable option (`--weights A --weights B`). */
export function collectOption(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `--model-weights 2,1`: one positive weight per model. */
export function parseModelWeights(v: string, models: number): number[] {
  const w = parseNumberList('--model-weights', v);
  if (w.length !== models) throw new UserError(`--model-weights has ${w.length} values for ${models} models (--weights)`);
  if (w.some((x) => !(x > 0))) throw new UserError(`--model-weights must be positive numbers, got "${v}"`);
  return w;
}

/** The config of each of `models` models: one --config-file per model (by position), or one for all. */
export function pairConfigs(configs: readonly string[], models: number): string[] {
  if (configs.length === 1) return Array.from({ length: models }, () => configs[0]!);
  if (configs.length !== models) throw new UserError(`${configs.length} --config-file for ${models} --weights: give one config for all models or one per model`);
  return [...configs];
}
