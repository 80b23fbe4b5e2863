// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_, entirely on the GPU:
// the global norm and the coefficient min(1, max_norm / (norm + 1e-6)) are written to a small
// buffer, and an in-place kernel multiplies the gradients by the coefficient it reads from there.
// By default (`foreach: true`) both passes take a few gradients per dispatch (multi-tensor
// kernels, bit-identical to one dispatch per gradient).
import { empty, type Tensor } from '../tensor';
import { launchClampInPlace, launchGlobalNorm, launchScaleByBuffer, launchScaleByBufferMulti } from '../../kernels/optim/clip';
import type { FlatF32 } from '../../kernels/optim/slots';

function gradsOf(params: Iterable<Tensor>, what: string): Tensor[] {
  const out: Tensor[] = [];
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (g.dtype !== 'f32') throw new Error(`${what}: gradient of ${p.name ?? 'a parameter'} is ${g.dtype}, expected f32`);
    if (!g.isContiguous()) throw new Error(`${what}: gradient of ${p.name ?? 'a parameter'} is not contiguous`);
    out.push(g);
  }
  return out;
}

const run = (t: Tensor): FlatF32 => ({ buffer: t.buffer, offset: t.offset });

/**
 * Scale the gradients of `params` in place so that their global `normType` norm is at most
 * `maxNorm`. Returns the norm before clipping as a scalar tensor (read it only when logging).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2, opts: { foreach?: boolean } = {}): Tensor {
  if (!(maxNorm >= 0)) throw new Error(`clipGradNorm: maxNorm must be >= 0, got ${maxNorm}`);
  const foreach = opts.foreach ?? true;
  const grads = gradsOf(params, 'clipGradNorm');
  const normAndCoef = empty([2]);
  const runs = grads.map((g) => ({ n: g.numel, run: run(g) }));
  launchGlobalNorm(runs, normType, maxNorm, run(normAndCoef), foreach);
  if (foreach) launchScaleByBufferMulti(runs, normAndCoef.buffer, normAndCoef.offset + 1);
  else for (const g of grads) launchScaleByBuffer(g.numel, run(g), normAndCoef.buffer, normAndCoef.offset + 1);
  const norm = normAndCoef.viewAs([], [], normAndCoef.offset);
  normAndCoef.dispose(); // the view keeps the storage alive
  return norm;
}

/** The global gradient norm without clipping (scalar tensor). */
export function gradNorm(params: Iterable<Tensor>, normType = 2, opts: { foreach?: boolean } = {}): Tensor {
  const grads = gradsOf(params, 'gradNorm');
  const normAndCoef = empty([2]);
  launchGlobalNorm(grads.map((g) => ({ n: g.numel, run: run(g) })), normType, Infinity, run(normAndCoef), opts.foreach ?? true);
  const norm = normAndCoef.viewAs([], [], normAndCoef.offset);
  normAndCoef.dispose();
  return norm;
}

/** Clamp every gradient of `params` to [-clipValue, clipValue], in place. */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  if (!(clipValue >= 0)) throw new Error(`clipGradValue: clipValue must be >= 0, got ${clipValue}`);
  for (const g of gradsOf(params, 'clipGradValue')) launchClampInPlace(g.numel, run(g), -clipValue, clipValue);
}
