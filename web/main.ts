// The page: Segment, Fine-tune and Benchmark views over web/lib, and the automation hook
// `window.cellgpu` (ready, adapter, segment, finetune, benchmark), which the UI itself calls.
import { cocoRleFromString, decodeCocoRle } from '../structures/coco-rle';
import { CELL_TYPES } from '../pipeline/data/cell-types';
import { synthImages, type SynthImage } from '../pipeline/data/synth/dataset';
import type { CocoResult } from '../pipeline/data/coco/types';
import {
  checkWebGpu, decodeImage, fetchBytes, fetchConfig, initWebGpu, modelFromBytes, segmentGray, submissionRows, weightsToSafetensors,
  type AdapterInfo, type GrayImage, type LoadedModel, type SegmentResult,
} from './lib/core';
import { finetune as finetuneModel, synthTrainingSet } from './lib/finetune';
import { runBenchmark, type BenchRow } from './lib/bench';
import { rt, type RuntimeStats } from '../runtime/runtime';

const DEMO = {
  config: 'configs/synth_centermask_lite_V_19_slim_scratch.yaml',
  weights: 'models/zoo/centermask_lite_V_19_slim_synth.safetensors',
};
/** Config overrides from the page URL, `?overrides=KEY,VALUE,KEY,VALUE` (as `cellseg predict KEY
 *  VALUE ...`): e.g. INPUT.MIN_SIZE_TEST for small images. */
const OVERRIDES = new URLSearchParams(location.search).get('overrides')?.split(',').filter((s) => s !== '') ?? [];
const COLORS: [number, number, number][] = [[230, 25, 75], [60, 180, 75], [0, 130, 200]];

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (s: string) => ($('status').textContent = s);
function showError(msg: string | null): void {
  const e = $('error');
  e.hidden = !msg;
  e.textContent = msg ?? '';
}
function progress(done: number, total: number | undefined, what: string): void {
  const p = $<HTMLProgressElement>('progress');
  p.hidden = false;
  if (total) {
    p.max = total;
    p.value = done;
  } else p.removeAttribute('value');
  status(`loading ${what}: ${(done / 2 ** 20).toFixed(1)}${total ? ` / ${(total / 2 ** 20).toFixed(1)}` : ''} MiB`);
}
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

let model: LoadedModel | undefined;
let tuned: LoadedModel | undefined;
let modelBytes: Uint8Array | undefined;
let adapter: AdapterInfo | null = null;
let last: { result: SegmentResult; name: string; image: GrayImage; tta: boolean } | undefined;
let busy = Promise.resolve();

/** Runs GPU work one job at a time (the page's buttons and the hook share one device). */
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = busy.then(fn, fn);
  busy = run.then(() => undefined, () => undefined);
  return run;
}

async function loadWeights(bytes: Uint8Array, name: string): Promise<void> {
  status(`building the model and loading ${name}…`);
  const cfg = model?.cfg ?? (await fetchConfig(DEMO.config, OVERRIDES));
  model = await modelFromBytes(cfg, bytes, name);
  modelBytes = bytes;
  $('model-name').textContent = `model: ${name}`;
}

const ready: Promise<void> = (async () => {
  try {
    adapter = await initWebGpu();
    $('adapter').textContent = `WebGPU adapter: ${adapter.name} (${adapter.vendor})${adapter.fallback ? ', a software fallback adapter' : ''}`;
    const bytes = await fetchBytes(DEMO.weights, progress);
    await loadWeights(bytes, DEMO.weights.split('/').pop()!);
    $('progress').hidden = true;
    status('ready: choose or drop an image');
  } catch (err) {
    $('progress').hidden = true;
    $('adapter').textContent = 'WebGPU: unavailable';
    showError(errorText(err));
    status('');
    throw err;
  }
})();

function drawOverlay(img: GrayImage, instances: readonly CocoResult[]): void {
  const c = $<HTMLCanvasElement>('overlay');
  c.width = img.width;
  c.height = img.height;
  const ctx = c.getContext('2d')!;
  const out = ctx.createImageData(img.width, img.height);
  for (let i = 0; i < img.data.length; i++) {
    const v = img.data[i]!;
    out.data.set([v, v, v, 255], 4 * i);
  }
  for (const r of instances) {
    if (!r.segmentation) continue;
    const seg = r.segmentation as { size: [number, number]; counts: string };
    const mask = decodeCocoRle(cocoRleFromString(seg.counts, seg.size[0], seg.size[1]));
    const [cr, cg, cb] = COLORS[(r.category_id - 1) % COLORS.length]!;
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const p = 4 * i;
      out.data[p] = (out.data[p]! + cr) >> 1;
      out.data[p + 1] = (out.data[p + 1]! + cg) >> 1;
      out.data[p + 2] = (out.data[p + 2]! + cb) >> 1;
    }
  }
  ctx.putImageData(out, 0, 0);
  ctx.lineWidth = 1;
  for (const r of instances) {
    const [x, y, w, h] = r.bbox ?? [0, 0, 0, 0];
    const [cr, cg, cb] = COLORS[(r.category_id - 1) % COLORS.length]!;
    ctx.strokeStyle = `rgb(${cr},${cg},${cb})`;
    ctx.strokeRect(x + 0.5, y + 0.5, w, h);
  }
}

const scoreThresh = () => Number($<HTMLInputElement>('score-thresh').value) || 0;

/** Overlay and counts of the instances scoring at least the page's threshold (as `cellseg overlay
 *  --score-thresh`); the hook and the downloads keep every instance. */
function showResult(res: SegmentResult, name: string, img: GrayImage, tta: boolean): void {
  const shown = res.instances.filter((r) => r.score >= scoreThresh());
  drawOverlay(img, shown);
  const body = $('counts').querySelector('tbody')!;
  body.textContent = '';
  CELL_TYPES.forEach((t, k) => {
    const n = shown.filter((r) => r.category_id === k + 1).length;
    const tr = document.createElement('tr');
    tr.innerHTML = `<td><span class="swatch" style="background:rgb(${COLORS[k]!.join(',')})"></span>${t}</td><td>${n}</td>`;
    body.append(tr);
  });
  $('timing').textContent = `${name}: ${res.width}x${res.height}, ${res.instances.length} instances (${shown.length} shown) in ${res.ms.toFixed(0)} ms${tta ? ' (TTA x4 + WSF)' : ''} on ${adapter?.name ?? 'WebGPU'}`;
  for (const id of ['dl-coco', 'dl-sub']) $<HTMLButtonElement>(id).disabled = false;
}

/** The hook's segment: decode, infer, draw; errors reject with a message the page also shows. */
async function segment(blob: Blob, o: { tta?: boolean } = {}): Promise<{ instances: CocoResult[]; ms: number }> {
  const name = (blob as File).name || 'image';
  return exclusive(async () => {
    try {
      await ready;
      await checkWebGpu();
      showError(null);
      $<HTMLInputElement>('tta').checked = !!o.tta; // the page shows what ran, whoever called
      status(`decoding ${name}…`);
      const img = await decodeImage(blob, name);
      status(`segmenting ${name} (${img.width}x${img.height})${o.tta ? ' with TTA' : ''}…`);
      const res = await segmentGray(model!, img, { tta: o.tta });
      last = { result: res, name, image: img, tta: !!o.tta };
      showResult(res, name, img, !!o.tta);
      status(`done: ${res.instances.length} instances`);
      return { instances: res.instances, ms: res.ms };
    } catch (err) {
      status('');
      showError(errorText(err));
      throw err;
    }
  });
}

function drawLosses(losses: readonly number[]): void {
  const c = $<HTMLCanvasElement>('loss-chart');
  const ctx = c.getContext('2d')!;
  ctx.clearRect(0, 0, c.width, c.height);
  if (!losses.length) return;
  const max = Math.max(...losses) * 1.05;
  const pad = 30;
  ctx.strokeStyle = '#888';
  ctx.strokeRect(pad, 5, c.width - pad - 5, c.height - pad);
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.fillText(max.toFixed(2), 0, 14);
  ctx.fillText('0', 18, c.height - pad + 4);
  ctx.fillText(`iteration (${losses.length})`, c.width / 2 - 30, c.height - 8);
  ctx.strokeStyle = '#1a73e8';
  ctx.beginPath();
  losses.forEach((l, i) => {
    const x = pad + ((c.width - pad - 5) * i) / Math.max(1, losses.length - 1);
    const y = 5 + (c.height - pad) * (1 - l / max);
    if (i) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

/** The hook's finetune: a copy of the loaded model trained on synthetic cells made here; `size`
 *  is the side of the synthetic images and the training scale and crop (default 256, the demo
 *  recipe's; e.g. 128 on a software adapter). */
async function finetune(iters: number, o: { images?: number; seed?: number; size?: number } = {}): Promise<{ losses: number[]; seconds: number }> {
  return exclusive(async () => {
    try {
      await ready;
      await checkWebGpu();
      showError(null);
      if (!Number.isInteger(iters) || iters < 1) throw new Error(`iterations must be a positive integer, got ${iters}`);
      status('making synthetic training images…');
      const size = o.size ?? 256;
      const set = synthTrainingSet({ seed: o.seed ?? 7, images: o.images ?? 3, width: size, height: size });
      const copy = await modelFromBytes(model!.cfg, modelBytes!, `${model!.name} (fine-tuned)`);
      const losses: number[] = [];
      const r = await finetuneModel(copy, set, {
        iters,
        seed: o.seed,
        size: o.size,
        onIteration: (i, loss) => {
          losses.push(loss);
          drawLosses(losses);
          status(`fine-tune: iteration ${i + 1}/${iters}, loss ${loss.toFixed(4)}`);
        },
      });
      tuned = copy;
      $('ft-log').textContent = `${iters} iterations on ${set.records.length} synthetic images in ${r.seconds.toFixed(1)} s; loss ${r.losses[0]!.toFixed(3)} → ${r.losses[r.losses.length - 1]!.toFixed(3)}`;
      for (const id of ['ft-dl', 'ft-use']) $<HTMLButtonElement>(id).disabled = false;
      status('fine-tune done');
      return r;
    } catch (err) {
      status('');
      showError(errorText(err));
      throw err;
    }
  });
}

async function benchmark(): Promise<{ adapter: string; rows: BenchRow[] }> {
  return exclusive(async () => {
    await ready;
    await checkWebGpu();
    status('benchmark running…');
    const rows = await runBenchmark();
    const body = $('bench').querySelector('tbody')!;
    body.textContent = '';
    for (const r of rows) {
      const tr = document.createElement('tr');
      tr.innerHTML = `<td>${r.name}</td><td>${r.ms.toFixed(2)}</td><td>${r.gflops.toFixed(2)}</td>`;
      body.append(tr);
    }
    status(`benchmark done on ${adapter?.name}`);
    return { adapter: adapter?.name ?? '', rows };
  });
}

function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** A synthetic test image (the generator of `cellseg synth`) as a PNG blob. */
async function synthPng(seed = 11, width = 256, height = 256): Promise<File> {
  const im = synthImages({ seed, trainImages: 0, testImages: 1, width, height }, 'test').next().value as SynthImage;
  const c = new OffscreenCanvas(width, height);
  const ctx = c.getContext('2d')!;
  const d = ctx.createImageData(width, height);
  im.pixels.forEach((v, i) => d.data.set([v, v, v, 255], 4 * i));
  ctx.putImageData(d, 0, 0);
  return new File([await c.convertToBlob({ type: 'image/png' })], `synth_${im.meta.id}.png`, { type: 'image/png' });
}

const hook = {
  ready,
  /** The WebGPU adapter: null until `ready` (or when WebGPU failed). */
  get adapter(): AdapterInfo | null {
    return adapter;
  },
  segment,
  finetune,
  benchmark,
  synthPng,
  /** The runtime's counters (dispatches, pipelines compiled, submits, ...): e.g. to see how many
   *  kernels a first segment or fine-tune compiles. */
  stats: (): RuntimeStats => rt().stats(),
};
declare global {
  interface Window {
    cellgpu: typeof hook;
  }
}
window.cellgpu = hook;
ready.catch(() => {}); // shown in the page; the hook's promise still rejects for callers

// --- UI wiring: every action goes through the hook's functions.
const swallow = (p: Promise<unknown>) => void p.catch(() => {});
const tabs = ['segment', 'finetune', 'bench'];
function selectTab(name: string): void {
  for (const t of tabs) {
    const on = t === name;
    const tab = $(`tab-${t}`);
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`view-${t}`).hidden = !on;
    if (on) tab.focus();
  }
}
tabs.forEach((t, i) => {
  const tab = $(`tab-${t}`);
  tab.addEventListener('click', () => selectTab(t));
  tab.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight') selectTab(tabs[(i + 1) % tabs.length]!);
    if (e.key === 'ArrowLeft') selectTab(tabs[(i + tabs.length - 1) % tabs.length]!);
  });
});
const tta = () => $<HTMLInputElement>('tta').checked;
const drop = $('drop');
const imageInput = $<HTMLInputElement>('image-file');
drop.addEventListener('click', () => imageInput.click());
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    imageInput.click();
  }
});
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer?.files[0];
  if (f) swallow(segment(f, { tta: tta() }));
});
imageInput.addEventListener('change', () => {
  const f = imageInput.files?.[0];
  imageInput.value = '';
  if (f) swallow(segment(f, { tta: tta() }));
});
$('synth-image').addEventListener('click', () => swallow(synthPng().then((f) => segment(f, { tta: tta() }))));
$<HTMLInputElement>('weights-file').addEventListener('change', (e) => {
  const input = e.target as HTMLInputElement;
  const f = input.files?.[0];
  input.value = '';
  if (!f) return;
  swallow(
    exclusive(async () => {
      try {
        await ready;
        await checkWebGpu();
        showError(null);
        await loadWeights(new Uint8Array(await f.arrayBuffer()), f.name);
        status(`loaded ${f.name}`);
      } catch (err) {
        status('');
        showError(`${f.name}: ${errorText(err)}`);
        throw err;
      }
    }),
  );
});
$('dl-coco').addEventListener('click', () => {
  if (last) download(new Blob([JSON.stringify(last.result.instances)], { type: 'application/json' }), `${last.name.replace(/\.\w+$/, '')}_results.json`);
});
$('dl-sub').addEventListener('click', () => {
  if (!last) return;
  const id = last.name.replace(/\.\w+$/, '');
  const rows = submissionRows(last.result.instances, id, last.result.width, last.result.height);
  download(new Blob([`id,predicted\n${rows.join('\n')}\n`], { type: 'text/csv' }), `${id}_submission.csv`);
});
$('ft-run').addEventListener('click', () => swallow(finetune(Number($<HTMLInputElement>('ft-iters').value), { images: Number($<HTMLInputElement>('ft-images').value) })));
$('ft-dl').addEventListener('click', () => {
  if (tuned) swallow(exclusive(async () => download(await weightsToSafetensors(tuned!, { format: 'cellgpu-web-finetune' }), 'model_finetuned.safetensors')));
});
$('ft-use').addEventListener('click', () => {
  if (!tuned) return;
  model = tuned;
  $('model-name').textContent = `model: ${tuned.name}`;
  selectTab('segment');
});
$('score-thresh').addEventListener('change', () => {
  if (last) showResult(last.result, last.name, last.image, last.tta);
});
$('bench-run').addEventListener('click', () => swallow(benchmark()));
