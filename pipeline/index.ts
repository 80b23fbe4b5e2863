// The pipeline's library API: data formats, synthetic data, shape analysis, COCO, evaluation,
// fusion and post-processing. `npm start` chains: writeSynthDataset -> collectShapeSamples /
// buildShapeReport -> buildCocoDataset / stratifiedKFold / subsetCoco -> (training) ->
// cocoEvaluate / competitionScore -> weightedSegmentsFusion (TTA) -> postprocessImage ->
// writeSubmission / validateSubmission.

export * from './data/cell-types';
export * from '../structures/rle';
export * from '../structures/mask-crop';
export * from '../structures/coco-rle';
export * from './data/train-csv';
export * from './post/submission';
export * from './io/atomic';
export * from './io/png';
export { splitCsvLine, csvField } from './io/csv';
export * from './data/synth/dataset';
export { TYPE_STATS } from './data/synth/cell-shapes';
export * from './shape/region-props';
export * from './shape/statistics';
export * from './shape/analyze';
export { shapeFigureSvg } from './shape/figure';
export * from './data/coco/types';
export { readCocoDataset, readCocoResults } from './data/coco/read';
export { readJsonFile } from './io/json';
export * from './data/coco/build';
export * from './data/coco/split';
export { maskToPolygons } from '../structures/mask-to-polygons';
export { findContours } from '../structures/contours';
export * from './evaluation/competition-metric';
export { runsIouMatrix } from './evaluation/mask-iou';
export * from './evaluation/coco-params';
export { cocoEvaluate, loadResults, formatCocoSummary, SUMMARY_KEYS, type CocoSummary, type CocoEvalOutput } from './evaluation/coco-eval';
export * from './fusion/wbf';
export * from './engine/tta';
export * from './fusion/wsf';
export * from './post/postprocess';
export * from './post/validate-submission';
