// The demo model (configs/synth_centermask_lite_V_19_slim_scratch.yaml with the zoo weights) on one
// 704x520 synthetic image, the Sartorius size, through the whole predictor (resize to 520, model,
// postprocess, masks): in Node on Dawn (lavapipe here) and in the web page in Chromium (WebGPU on
// SwiftShader), on the same machine. Per runtime: the adapter's name, the first inference (which
// compiles the kernels) and the median of the warm ones. The page is served by a `node
// web/build.mjs` child process and driven by playwright-core with /usr/bin/chromium (no browser is
// downloaded); without it the Chromium row is left out with a message.
// Run: npm run bench -- browser [--repeats N]   (warm inferences per runtime, default 2)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { init, rt } from '../../runtime/runtime';
import { loadConfig } from '../../models/config/config';
import { synthImages } from '../../pipeline/data/synth/dataset';
import { encodePngGray } from '../../pipeline/io/png';
import { loadModelForInference, predictGray, predictorOptionsFromConfig } from '../../pipeline/engine/predictor';
import { median } from '../harness';
import type { BenchRow, BenchSuite } from '../types';

const CONFIG = 'configs/synth_centermask_lite_V_19_slim_scratch.yaml';
const WEIGHTS = 'models/zoo/centermask_lite_V_19_slim_synth.safetensors';
const CHROMIUM = '/usr/bin/chromium';
/** SwiftShader flags that give navigator.gpu an adapter on a host without a GPU. */
const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
const [W, H] = [704, 520];

function image(): Uint8Array {
  return synthImages({ seed: 11, trainImages: 0, testImages: 1, width: W, height: H }, 'test').next().value!.pixels;
}

async function inNode(repeats: number): Promise<BenchRow> {
  await init();
  const cfg = loadConfig(CONFIG);
  const model = await loadModelForInference(cfg, WEIGHTS);
  const pixels = image();
  const opts = predictorOptionsFromConfig(cfg, [1, 2, 3], false);
  const times: number[] = [];
  let instances = 0;
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    instances = (await predictGray(model, pixels, W, H, opts)).length;
    times.push(performance.now() - t0);
  }
  const a = rt().gpu.adapter;
  return {
    suite: 'browser', case: `demo model ${W}x${H} inference, Node (Dawn)`, ms: median(times.slice(1)), first_ms: times[0]!,
    adapter: a.description || a.device, instances, pipelines: rt().stats().pipelines, async_pipelines: rt().asyncPipelines,
  };
}

/** `node web/build.mjs --port 0` (build and serve), resolving to its URL. */
function servePage(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['web/build.mjs', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((ok, fail) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) ok({ url: m[1]!, stop: () => child.kill() });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => fail(new Error(`web/build.mjs exited (${code}): ${out.trim()}`)));
  });
}

async function inChromium(repeats: number): Promise<BenchRow> {
  const png = [...encodePngGray({ width: W, height: H, data: image() })];
  const server = await servePage();
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.evaluate(() => window.cellgpu.ready);
    const times: number[] = [];
    let instances = 0;
    for (let i = 0; i <= repeats; i++) {
      const t0 = performance.now();
      instances = await page.evaluate(async (bytes) => (await window.cellgpu.segment(new File([new Uint8Array(bytes)], 'synth.png', { type: 'image/png' }))).instances.length, png);
      times.push(performance.now() - t0);
    }
    const [adapter, pipelines] = await page.evaluate(() => [window.cellgpu.adapter!.name, window.cellgpu.stats().pipelines] as const);
    return { suite: 'browser', case: `demo model ${W}x${H} inference, Chromium (WebGPU)`, ms: median(times.slice(1)), first_ms: times[0]!, adapter, instances, pipelines, async_pipelines: true };
  } finally {
    await browser.close();
    server.stop();
  }
}

export const run: BenchSuite = async (ctx) => {
  const repeats = ctx.repeats ?? 2;
  const rows: BenchRow[] = [];
  const node = await inNode(repeats);
  ctx.log(`Node on ${node.adapter}: first ${(node.first_ms as number / 1000).toFixed(1)} s, warm ${(node.ms / 1000).toFixed(1)} s, ${node.instances} instances`);
  rows.push(node);
  if (!existsSync(CHROMIUM)) {
    ctx.log(`browser: no Chromium row: ${CHROMIUM} is absent (sudo sh scripts/setup-chromium.sh)`);
    return rows;
  }
  const web = await inChromium(repeats);
  ctx.log(`Chromium on ${web.adapter}: first ${(web.first_ms as number / 1000).toFixed(1)} s, warm ${(web.ms / 1000).toFixed(1)} s, ${web.instances} instances`);
  rows.push(web);
  return rows;
};
