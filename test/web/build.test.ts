// web/build.mjs without a browser: the page bundles without Node, and the build fails, naming the
// importer, when a Node built-in would be left in the bundle.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs script without types
import { buildWeb, ROOT } from '../../web/build.mjs';

describe('web build', () => {
  const out = mkdtempSync(join(tmpdir(), 'cellgpu-web-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('bundles web/main.ts for the browser without Node built-ins', async () => {
    const r = await buildWeb({ outdir: out });
    expect(r.bytes).toBeGreaterThan(100_000);
    expect(r.bytes).toBeLessThan(2_000_000);
  }, 60_000);

  // evaluation/evaluator.ts's inferenceOnDataset is not here: it reads the data set's image files.
  it('bundles the in-memory library without Node: engine, kernels, models, configs, structures, synthetic data, transforms, evaluation, fusion, post-processing', async () => {
    const entry = join(ROOT, 'web', `.library-${process.pid}.ts`);
    writeFileSync(
      entry,
      [
        "import * as engine from '../engine/index';",
        "import * as boxes from '../structures/boxes';",
        "import * as cocoRle from '../structures/coco-rle';",
        "import * as contours from '../structures/contours';",
        "import * as maskCrop from '../structures/mask-crop';",
        "import * as maskToPolygons from '../structures/mask-to-polygons';",
        "import * as polygons from '../structures/polygons';",
        "import * as rle from '../structures/rle';",
        "import * as transforms from '../pipeline/data/transforms';",
        "import * as wbf from '../pipeline/fusion/wbf';",
        "import * as wsf from '../pipeline/fusion/wsf';",
        "import * as cocoEval from '../pipeline/evaluation/coco-eval';",
        "import * as metric from '../pipeline/evaluation/competition-metric';",
        "import * as maskIou from '../pipeline/evaluation/mask-iou';",
        "import * as postprocess from '../pipeline/post/postprocess';",
        "import { toCocoResults } from '../pipeline/evaluation/coco-results';",
        "import { synthImages, synthImage } from '../pipeline/data/synth/dataset';",
        "import { CenterMask } from '../models/centermask';",
        "import { CfgNode, loadConfigFromText } from '../models/config/config';",
        "import { parseCheckpoint } from '../engine/checkpoint/load';",
        "import { parseSafetensors, serializeSafetensors } from '../engine/checkpoint/safetensors';",
        "import { predictGray } from '../pipeline/engine/predictor';",
        '(globalThis as any).lib = { engine, boxes, cocoRle, contours, maskCrop, maskToPolygons, polygons, rle, transforms, wbf, wsf, cocoEval, metric, maskIou, postprocess, toCocoResults, synthImages, synthImage, CenterMask, CfgNode, loadConfigFromText, parseCheckpoint, parseSafetensors, serializeSafetensors, predictGray };',
        '',
      ].join('\n'),
    );
    try {
      const r = await buildWeb({ outdir: out, entry });
      expect(r.bytes).toBeGreaterThan(100_000);
    } finally {
      rmSync(entry, { force: true });
    }
  }, 60_000);

  it('fails when a Node built-in would stay in the bundle, naming the file that imports it', async () => {
    const entry = join(ROOT, 'web', `.node-leak-${process.pid}.ts`);
    writeFileSync(entry, "import { loadConfig } from '../models/config/config';\n(globalThis as any).f = loadConfig;\n");
    try {
      await expect(buildWeb({ outdir: out, entry })).rejects.toThrow(/Node built-ins:[\s\S]*node:fs \(imported by [^)]*models\/config\/node-yaml\.ts/);
    } finally {
      rmSync(entry, { force: true });
    }
  }, 60_000);
});
