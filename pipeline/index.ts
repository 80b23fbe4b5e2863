// The pipeline's library API: data formats, synthetic data, shape analysis, COCO, evaluation,
// fusion and post-processing. `npm start` chains: writeSynthDataset -> collectShapeSamples /
// buildShapeReport -> buildCocoDataset / stratifiedKFold / subsetCoco -> (training) ->
// cocoEvaluate / competitionScore -> weightedSegmentsFusion (TTA) -> postprocessImage ->
// writeSubmission / validateSubmission.

export * from './data/cellTypes';
export * from '../structures/rle';
export * from '../structures/mask-crop';
export * from '../structures/coco-rle';
export * from './data/trainCsv';
export * from './data/submission';
export * from './io/atomic';
export * from './io/png';
export { splitCsvLine, csvField } from './io/csv';
export * from './synth/dataset';
export { TYPE_STATS } from './synth/cellShapes';
export * from './shape/regionProps';
export * from './shape/statistics';
export * from './shape/analyze';
export { shapeFigureSvg } from './shape/figure';
export * from './coco/types';
export { readCocoDataset, readCocoResults, readJsonFile } from './coco/read';
export * from './coco/build';
export * from './coco/split';
export { maskToPolygons } from '../structures/mask-to-polygons';
export { findContours } from '../structures/contours';
export * from './eval/competitionMetric';
export { runsIouMatrix } from './eval/maskIou';
export * from './eval/cocoParams';
export { cocoEvaluate, loadResults, formatCocoSummary, SUMMARY_KEYS, type CocoSummary, type CocoEvalOutput } from './eval/cocoEval';
export * from './fusion/wbf';
export * from './fusion/tta';
export * from './fusion/wsf';
export * from './post/postprocess';
export * from './post/validateSubmission';
