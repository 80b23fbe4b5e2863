// The browser API of cellgpu, shared by the page's UI (web/main.ts) and the automation hook
// `window.cellgpu`: WebGPU from navigator.gpu, the demo model (config text + safetensors bytes
// fetched over HTTP), whole-image inference through the CLI's predictor (predictGray: the same
// resize, model, TTA flips and WSF fusion), COCO results and Sartorius submission rows, a short
// fine-tune on synthetic cells, and a matmul/conv micro-benchmark. Nothing here touches files.
import { init } from '../../runtime/runtime';
import { GpuUnavailableError, getGpu, type Gpu } from '../../runtime/device';
import { loadConfigFromText, type CfgNode } from '../../models/config/config';
import { joinRelative, mapYamlResolver, yamlBaseOf } from '../../models/config/load-yaml';
import { parseCheckpoint } from '../../engine/checkpoint/load';
import { serializeSafetensors } from '../../engine/checkpoint/safetensors';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { runsToRle } from '../../structures/rle';
import { declaredImageSize } from '../../pipeline/io/image-format';
import { rgbaToGray } from '../../pipeline/io/gray';
import { checkImageSize } from '../../pipeline/io/limits';
import { buildTrainableModel, type TrainableModel } from '../../pipeline/engine/model';
import { predictGray, predictorOptionsFromConfig } from '../../pipeline/engine/predictor';
import { modelStateToHost } from '../../pipeline/engine/checkpoint';
import { toCocoResults } from '../../pipeline/evaluation/coco-results';
import type { CocoResult } from '../../pipeline/data/coco/types';
import { candidatesByImage } from '../../pipeline/post/submission-from-results';
import { DEFAULT_POSTPROCESS, postprocessImage } from '../../pipeline/post/postprocess';

export interface AdapterInfo {
  name: string;
  vendor: string;
  features: string[];
  fallback: boolean;
}

/** What the framework's kernels need at least; a smaller adapter gets a clear message. */
const MIN_LIMITS = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
} as const;

/** A message for the page (and its tests): no WebGPU, no adapter, an adapter too small. */
export class WebGpuProblem extends Error {
  override name = 'WebGpuProblem';
}

let gpuInfo: Promise<AdapterInfo> | undefined;

/** WebGPU through runtime/device.ts (navigator.gpu in a page), checked against MIN_LIMITS. */
export function initWebGpu(): Promise<AdapterInfo> {
  gpuInfo ??= (async () => {
    let gpu: Gpu;
    try {
      gpu = await getGpu();
    } catch (err) {
      if (err instanceof GpuUnavailableError) throw new WebGpuProblem(`${err.message.split('\n')[0]} (this page needs WebGPU: Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu)`);
      throw new WebGpuProblem(`WebGPU failed to start: ${(err as Error).message}`);
    }
    const small = Object.entries(MIN_LIMITS).filter(([k, v]) => (gpu.limits as Record<string, number>)[k]! < v);
    if (small.length) {
      throw new WebGpuProblem(`the WebGPU adapter is too small for the model: ${small.map(([k, v]) => `${k} ${(gpu.limits as Record<string, number>)[k]} < ${v}`).join(', ')}`);
    }
    await init();
    const a = gpu.adapter;
    return {
      name: a.description || a.device || a.architecture || a.vendor || 'unnamed WebGPU adapter',
      vendor: a.vendor || 'unknown',
      features: [...gpu.device.features].sort(),
      fallback: a.isFallbackAdapter,
    };
  })();
  gpuInfo.catch(() => (gpuInfo = undefined));
  return gpuInfo;
}

export type Progress = (done: number, total: number | undefined, what: string) => void;

/** The bytes of a URL, reporting progress as they arrive. */
/** Before a GPU job: a lost device (the GPU process died, a driver reset) or a pending WebGPU error
 *  is thrown here, with what to do, instead of surfacing as a failed dispatch halfway through. */
export async function checkWebGpu(): Promise<void> {
  const gpu = await getGpu();
  try {
    gpu.throwIfFailed();
  } catch (err) {
    const msg = (err as Error).message;
    throw new WebGpuProblem(/device lost/i.test(msg) ? `${msg}; reload the page to start WebGPU again` : msg);
  }
}

export async function fetchBytes(url: string, onProgress?: Progress): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || undefined;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let done = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
    done += r.value.byteLength;
    onProgress?.(done, total, url);
  }
  const out = new Uint8Array(done);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  return out;
}

/** A config and its _BASE_ chain fetched over HTTP (names are URL paths), merged with overrides. */
export async function fetchConfig(url: string, overrides: readonly string[] = []): Promise<CfgNode> {
  const texts = new Map<string, string>();
  let name = url;
  for (let depth = 0; depth < 10 && !texts.has(name); depth++) {
    const res = await fetch(name);
    if (!res.ok) throw new Error(`cannot fetch config ${name}: HTTP ${res.status}`);
    const text = await res.text();
    texts.set(name, text);
    const base = yamlBaseOf(text, name);
    if (!base) break;
    name = joinRelative(name, base);
  }
  return loadConfigFromText(texts.get(url)!, url, mapYamlResolver(texts), overrides);
}

export interface LoadedModel {
  cfg: CfgNode;
  model: TrainableModel;
  name: string;
  /** Contiguous class k -> COCO category id. */
  categoryIds: number[];
}

/** Build the model of `cfg` and load checkpoint bytes into it (all tensors must fit, as
 *  loadModelForInference requires). */
export async function modelFromBytes(cfg: CfgNode, bytes: Uint8Array, name: string): Promise<LoadedModel> {
  await initWebGpu();
  const ck = parseCheckpoint(bytes, name);
  const tensors = new Map<string, HostTensor>();
  for (const [k, t] of ck.tensors) {
    const key = k.startsWith('module.') ? k.slice('module.'.length) : k;
    if (key !== 'pixel_mean' && key !== 'pixel_std') tensors.set(key, t);
  }
  const model = buildTrainableModel(cfg);
  const r = model.loadStateDict(tensors, { strict: false });
  if (r.missingKeys.length || r.shapeMismatches.length) {
    throw new Error(`${name} does not fit the model of this config: ${r.missingKeys.length} tensors missing, ${r.shapeMismatches.length} of another shape (${[...r.missingKeys, ...r.shapeMismatches.map((m) => m.key)].slice(0, 5).join(', ')}...)`);
  }
  model.eval();
  const categoryIds = Array.from({ length: cfg.MODEL.FCOS.NUM_CLASSES }, (_, k) => k + 1);
  return { cfg, model, name, categoryIds };
}

export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A PNG/JPEG/... blob as 8-bit gray, as the CLI reads PNGs (gray stays exact; RGB -> ITU-R 601
 *  luma). Decoded by the browser without colour management. */
export async function decodeImage(blob: Blob, name = 'image'): Promise<GrayImage> {
  // The size a PNG/JPEG header declares is checked against the CLI's limits before the browser
  // decodes (and allocates) anything; other formats are checked once decoded, before the pixels
  // are copied out.
  const declared = declaredImageSize(new Uint8Array(await blob.slice(0, 64 * 1024).arrayBuffer()));
  if (declared) checkImageSize(name, 'header', declared.width, declared.height);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new Error(`${name}: not a readable image (expected a PNG or JPEG file${blob.type ? `; got ${blob.type}` : ''})`);
  }
  const { width, height } = bmp;
  if (width === 0 || height === 0) throw new Error(`${name}: the image is empty`);
  try {
    checkImageSize(name, undefined, width, height);
  } catch (err) {
    bmp.close();
    throw err;
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { colorSpace: 'srgb', willReadFrequently: true })!;
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  const data = rgbaToGray(ctx.getImageData(0, 0, width, height).data, width * height);
  return { width, height, data };
}

export interface SegmentResult {
  instances: CocoResult[];
  ms: number;
  width: number;
  height: number;
}

/** Whole-image inference, exactly as `cellseg predict [--tta]` does it, as COCO results
 *  (image_id 1; score = mask score, or the fused score with TTA). */
export async function segmentGray(m: LoadedModel, img: GrayImage, o: { tta?: boolean } = {}): Promise<SegmentResult> {
  const t0 = performance.now();
  const preds = await predictGray(m.model, img.data, img.width, img.height, predictorOptionsFromConfig(m.cfg, m.categoryIds, !!o.tta));
  return { instances: toCocoResults(1, preds), ms: performance.now() - t0, width: img.width, height: img.height };
}

/** Sartorius submission rows (`id,predicted`) of one image's results, post-processed as
 *  `cellseg submit` does by default (score thresholds per type, overlap removal, minimum size). */
export function submissionRows(results: readonly CocoResult[], id: string, width: number, height: number): string[] {
  const cands = candidatesByImage(results, [{ id: 1, sartoriusId: id, width, height }], 'results').get(1) ?? [];
  const { masks } = postprocessImage(cands, width, height, DEFAULT_POSTPROCESS);
  return masks.length ? masks.map((r) => `${id},${runsToRle(r)}`) : [`${id},`];
}

/** The model's weights as a safetensors file (F32, as training checkpoints are). */
export async function weightsToSafetensors(m: LoadedModel, metadata: Record<string, string> = {}): Promise<Blob> {
  const chunks = serializeSafetensors(await modelStateToHost(m.model), metadata);
  return new Blob(chunks as BlobPart[], { type: 'application/octet-stream' });
}
