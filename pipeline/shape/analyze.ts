// `cellseg analyze`: per cell type, shape features of every training instance (from the masks
// themselves, not from the first polygon as the notebook did) with summary statistics, and the
// `shape_data` table (1 % and 99 % percentiles per feature and type) that post-processing reads in
// place of the notebook's shape_data.pkl.
import { InputError } from '../../runtime/errors';
import { CELL_TYPES, type CellType } from '../data/cell-types';
import { runsToCrop } from '../../structures/mask-crop';
import { readTrainCsv } from '../data/train-csv';
import { readJsonFile } from '../io/json';
import { SHAPE_FEATURES, regionProps, type ShapeFeatures } from './region-props';
import { describe, type FeatureStats } from './statistics';

export type ShapeFeatureName = keyof ShapeFeatures;

export interface CellTypeReport {
  images: number;
  instances: number;
  cells_per_image: FeatureStats;
  features: Record<ShapeFeatureName, FeatureStats>;
}

export interface ShapeReport {
  source: string;
  cell_types: Partial<Record<CellType, CellTypeReport>>;
  /** feature -> type -> {min: 1 % percentile, max: 99 % percentile} */
  shape_data: Record<ShapeFeatureName, Partial<Record<CellType, { min: number; max: number }>>>;
}

export interface ShapeSamples {
  perType: Record<CellType, { cellsPerImage: number[]; values: Record<ShapeFeatureName, number[]> }>;
}

function emptySamples(): ShapeSamples {
  const perType = {} as ShapeSamples['perType'];
  for (const t of CELL_TYPES) {
    perType[t] = { cellsPerImage: [], values: Object.fromEntries(SHAPE_FEATURES.map((f) => [f, []])) as unknown as Record<ShapeFeatureName, number[]> };
  }
  return { perType };
}

/** Feature samples of every instance in a train.csv. */
export async function collectShapeSamples(trainCsv: string, onImage?: () => void): Promise<ShapeSamples> {
  const samples = emptySamples();
  let images = 0;
  for await (const img of readTrainCsv(trainCsv)) {
    const bucket = samples.perType[img.cellType];
    bucket.cellsPerImage.push(img.instances.length);
    for (const inst of img.instances) {
      const f = regionProps(runsToCrop(inst.runs, img.width, img.height));
      if (!f) continue;
      for (const name of SHAPE_FEATURES) bucket.values[name].push(f[name]);
    }
    onImage?.();
    images++;
  }
  // Statistics of no cells would be an empty report that filters nothing downstream.
  if (images === 0) throw new InputError(trainCsv, undefined, 'has no rows (only a header): no cells to analyze');
  return samples;
}

export function buildShapeReport(source: string, samples: ShapeSamples): ShapeReport {
  const report: ShapeReport = {
    source,
    cell_types: {},
    shape_data: Object.fromEntries(SHAPE_FEATURES.map((f) => [f, {}])) as ShapeReport['shape_data'],
  };
  for (const t of CELL_TYPES) {
    const b = samples.perType[t];
    if (b.cellsPerImage.length === 0) continue;
    const features = {} as Record<ShapeFeatureName, FeatureStats>;
    for (const name of SHAPE_FEATURES) {
      features[name] = describe(b.values[name]);
      report.shape_data[name][t] = { min: features[name].p1, max: features[name].p99 };
    }
    report.cell_types[t] = {
      images: b.cellsPerImage.length,
      instances: b.values.area.length,
      cells_per_image: describe(b.cellsPerImage),
      features,
    };
  }
  return report;
}

/** Reads the `shape_data` table of a shape report, checking its structure. */
export function readShapeData(file: string): ShapeReport['shape_data'] {
  const raw = readJsonFile(file) as Partial<ShapeReport>;
  if (typeof raw !== 'object' || raw === null || typeof raw.shape_data !== 'object' || raw.shape_data === null) {
    throw new InputError(file, 'key "shape_data"', 'is missing; expected the JSON that `cellseg analyze` writes');
  }
  for (const [feature, perType] of Object.entries(raw.shape_data)) {
    if (!(SHAPE_FEATURES as readonly string[]).includes(feature)) {
      throw new InputError(file, `shape_data.${feature}`, `unknown feature; expected one of ${SHAPE_FEATURES.join(', ')}`);
    }
    for (const [t, range] of Object.entries(perType ?? {})) {
      const r = range as { min?: unknown; max?: unknown };
      if (typeof r?.min !== 'number' || typeof r?.max !== 'number') {
        throw new InputError(file, `shape_data.${feature}.${t}`, 'needs numeric "min" and "max"');
      }
    }
  }
  return raw.shape_data;
}
