// pycocotools Params for segm/bbox evaluation, generated the way it generates them (np.linspace,
// whose values carry float rounding: e.g. the 0.75 threshold is 5*step + 0.5 with step = 0.45/9).

/** numpy.linspace(start, stop, num) with endpoint=True, value for value. */
export function linspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(step === 0 ? (i / div) * delta + start : i * step + start);
  if (num > 1) out[num - 1] = stop;
  return out;
}

export interface AreaRange {
  label: 'all' | 'small' | 'medium' | 'large';
  lo: number;
  hi: number;
}

export interface CocoEvalParams {
  iouType: 'segm' | 'bbox';
  iouThrs: number[];
  recThrs: number[];
  areaRanges: AreaRange[];
  /** Sorted ascending, as evaluate() sorts them. */
  maxDets: number[];
}

export function defaultCocoParams(iouType: 'segm' | 'bbox', maxDets: number[] = [1, 10, 100]): CocoEvalParams {
  return {
    iouType,
    iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    areaRanges: [
      { label: 'all', lo: 0, hi: 1e5 ** 2 },
      { label: 'small', lo: 0, hi: 32 ** 2 },
      { label: 'medium', lo: 32 ** 2, hi: 96 ** 2 },
      { label: 'large', lo: 96 ** 2, hi: 1e5 ** 2 },
    ],
    maxDets: [...maxDets].sort((a, b) => a - b),
  };
}
