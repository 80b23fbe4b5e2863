// The pipeline's CPU-only library API: formats, synthetic data, COCO, shape analysis, fusion,
// post-processing and evaluation (nothing here needs a GPU; training and inference are in
// pipeline/engine/). `npm start` chains: writeSynthDataset -> collectShapeSamples /
// buildShapeReport -> buildCocoDataset / stratifiedKFold / subsetCoco -> (training, prediction
// with TTA + weightedSegmentsFusion) -> cocoEvaluate / competitionScore -> postprocessImage /
// writeSubmissionFromResults -> validateSubmission.

export * from '../structures/rle';
export * from '../structures/mask-crop';
export * from '../structures/coco-rle';
export { maskToPolygons } from '../structures/mask-to-polygons';
export { findContours } from '../structures/contours';

export * from './io/atomic';
export * from './io/png';
export { readImageGray, decodeTiffGray, imageFormatOf, isImageFileName, imageStem, IMAGE_EXTENSIONS } from './io/image';
export { splitCsvLine, csvField } from './io/csv';
export { readJsonFile } from './io/json';

export * from './data/cell-types';
export * from './data/train-csv';
export * from './data/coco/types';
export { readCocoDataset, readCocoResults } from './data/coco/read';
export * from './data/coco/build';
export * from './data/coco/split';
export * from './data/synth/dataset';
export { TYPE_STATS } from './data/synth/cell-shapes';

export * from './fusion/wbf';
export * from './fusion/wsf';
export * from './engine/tta';

export * from './shape/region-props';
export * from './shape/statistics';
export * from './shape/analyze';
export { shapeFigureSvg } from './shape/figure';

export * from './post/submission';
export * from './post/postprocess';
export { fillHoles, contourCount } from './post/mask-topology';
export * from './post/validate-submission';
export { writeSubmissionFromResults, type SubmissionImage, type SubmissionSummary } from './post/submission-from-results';

export * from './evaluation/competition-metric';
export { runsIouMatrix } from './evaluation/mask-iou';
export * from './evaluation/coco-params';
export { cocoEvaluate, loadResults, formatCocoSummary, SUMMARY_KEYS, type CocoSummary, type CocoEvalOutput } from './evaluation/coco-eval';
