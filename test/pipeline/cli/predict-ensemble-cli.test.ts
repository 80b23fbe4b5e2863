// The commands of the "seed pipeline, complete" issue end to end: `cellseg predict` with several
// --weights (an ensemble fused by WSF) on TIFF input writing overlays, its option errors, and
// `cellseg plot-metrics OUTPUT_DIR`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { makeTempDir } from '../tmp';
import { encodeGrayTiff } from '../io/tiff-writer';

const tmp = makeTempDir('cli-i16');
afterAll(tmp.cleanup);
const ROOT = new URL('../../../', import.meta.url).pathname;
const CONFIG = join(ROOT, 'configs/synth_centermask_lite_V_19_slim_scratch.yaml');
const DEMO = join(ROOT, 'models/zoo/centermask_lite_V_19_slim_synth.safetensors');

function cellseg(...args: string[]) {
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'pipeline/cli/main.ts'), ...args], { encoding: 'utf8', cwd: tmp.dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cellseg predict (ensemble) and plot-metrics', () => {
  it('predict: configs or model weights that do not match the --weights count are one-line errors', () => {
    const images = join(tmp.dir, 'none');
    mkdirSync(images, { recursive: true });
    let r = cellseg('predict', '--config-file', CONFIG, '--config-file', CONFIG, '--weights', DEMO, '--weights', DEMO, '--weights', DEMO, '--images', images);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cellseg: 2 --config-file for 3 --weights: give one config for all models or one per model/);
    r = cellseg('predict', '--config-file', CONFIG, '--weights', DEMO, '--weights', DEMO, '--model-weights', '1,2,3', '--images', images);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cellseg: --model-weights has 3 values for 2 models/);
    r = cellseg('predict', '--config-file', CONFIG, '--images', images);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--weights/);
  }, 120_000);

  it('predict: the demo model twice (weights 2,1) on a 16-bit TIFF folder writes COCO results and one overlay per image', () => {
    const images = join(tmp.dir, 'tif');
    mkdirSync(images, { recursive: true });
    const W = 128;
    const H = 96;
    const px = Uint16Array.from({ length: W * H }, (_, i) => {
      const x = i % W;
      const y = Math.floor(i / W);
      const d = Math.hypot(x - 50, y - 40);
      return d < 12 ? 40000 : d < 14 ? 20000 : 33000; // a bright cell with a dark rim on gray
    });
    writeFileSync(join(images, 'cell.tif'), encodeGrayTiff(W, H, px, { bits: 16 }));
    const out = join(tmp.dir, 'results.json');
    const ov = join(tmp.dir, 'overlays');
    const r = cellseg('predict', '--config-file', CONFIG, '--weights', DEMO, '--weights', DEMO, '--model-weights', '2,1', '--images', images, '--out', out, '--overlay', ov, 'INPUT.MIN_SIZE_TEST', '96', 'INPUT.MAX_SIZE_TEST', '128');
    expect(r.err).not.toMatch(/at .*\.ts:\d+/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ensemble of 2 models, weights 2,1, WSF\); overlays in /);
    const results = JSON.parse(readFileSync(out, 'utf8')) as { image_id: number; segmentation: { size: number[] } }[];
    for (const res of results) {
      expect(res.image_id).toBe(1);
      expect(res.segmentation.size).toEqual([H, W]);
    }
    expect(readdirSync(ov)).toEqual(['cell.png']);
    const png = PNG.sync.read(readFileSync(join(ov, 'cell.png')));
    expect([png.width, png.height]).toEqual([W, H]);
  }, 300_000);

  it('plot-metrics OUTPUT_DIR writes OUTPUT_DIR/metrics.png; a folder without metrics.json is an error', () => {
    const dir = join(tmp.dir, 'run');
    mkdirSync(dir, { recursive: true });
    const lines: string[] = [];
    for (let it = 0; it < 40; it += 5) lines.push(JSON.stringify({ iteration: it, loss_mask: 1 / (it + 1), total_loss: 2 / (it + 1), lr: 0.01 }));
    lines.push(JSON.stringify({ iteration: 39, 'segm/AP': 12.5 }));
    writeFileSync(join(dir, 'metrics.json'), lines.join('\n') + '\n');
    let r = cellseg('plot-metrics', dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote .*run\/metrics\.png/);
    expect(existsSync(join(dir, 'metrics.png'))).toBe(true);
    r = cellseg('plot-metrics', join(tmp.dir, 'nothing-here'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has no metrics\.json/);
  }, 120_000);
});
