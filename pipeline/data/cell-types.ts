// The three Sartorius cell types, their COCO category ids (1-based, as mistag's notebooks) and the
// post-processing constants of the solutions this pipeline follows: indices 0,1,2 = shsy5y, astro,
// cort.

export const CELL_TYPES = ['shsy5y', 'astro', 'cort'] as const;
export type CellType = (typeof CELL_TYPES)[number];

export function isCellType(s: string): s is CellType {
  return (CELL_TYPES as readonly string[]).includes(s);
}

/** COCO category id of a cell type: shsy5y=1, astro=2, cort=3. */
export function categoryIdOf(t: CellType): number {
  return CELL_TYPES.indexOf(t) + 1;
}

export function cellTypeOfCategory(id: number): CellType | undefined {
  return CELL_TYPES[id - 1];
}

export const COCO_CATEGORIES = CELL_TYPES.map((name, i) => ({ supercategory: 'cells', id: i + 1, name }));

/** Slawek Biel's per-class score thresholds (S-3), the defaults of the simple submission path. */
export const DEFAULT_SCORE_THRESHOLDS: Record<CellType, number> = { shsy5y: 0.15, astro: 0.35, cort: 0.55 };
/** Minimum pixel count after overlap removal (S-3). */
export const DEFAULT_MIN_PIXELS: Record<CellType, number> = { shsy5y: 75, astro: 150, cort: 75 };
/** mistag's TTA/WSF skip-box thresholds on raw per-pass box scores (M-WSF). */
export const WSF_SKIP_THRESHOLDS: Record<CellType, number> = { shsy5y: 0.53, astro: 0.45, cort: 0.55 };

export const IMAGE_WIDTH = 704;
export const IMAGE_HEIGHT = 520;
