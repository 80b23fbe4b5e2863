// Define-by-run autograd. Each differentiable op records a GradNode on its output: the inputs and
// a closure that maps the output's gradient to the inputs' gradients (the op's backward, written
// next to its forward). `backward()` walks the recorded graph in reverse topological order,
// accumulates gradients, stores them in the leaves' `.grad`, and frees intermediate gradients as
// soon as their last consumer ran. Backward closures see `requiresGrad` on their inputs and skip
// gradients nobody needs.
import { scope, type Tensor } from './tensor';

// The graph's node type lives with the tensor that carries it (tensor.ts), so that tensor.ts does
// not import this file: the dependency runs one way, autograd -> tensor.
export type { GradNode } from './tensor';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording autograd history (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    const r = fn();
    if (r instanceof Promise) {
      return r.finally(() => (gradEnabled = prev)) as T;
    }
    gradEnabled = prev;
    return r;
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
}

/** Attach a backward to `out` when any input requires grad (and grad mode is on). */
export function record<T extends Tensor>(out: T, name: string, inputs: readonly Tensor[], backward: (grad: Tensor) => readonly (Tensor | null | undefined)[]): T {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = { name, inputs, backward };
  return out;
}

// Set by engine/ops to avoid an import cycle: elementwise add and a contiguous copy.
let addImpl: ((a: Tensor, b: Tensor) => Tensor) | undefined;
let copyImpl: ((a: Tensor) => Tensor) | undefined;
let onesLikeImpl: ((a: Tensor) => Tensor) | undefined;
let castImpl: ((a: Tensor, dtype: Tensor['dtype']) => Tensor) | undefined;
export function installAutogradOps(ops: {
  add: (a: Tensor, b: Tensor) => Tensor;
  copy: (a: Tensor) => Tensor;
  onesLike: (a: Tensor) => Tensor;
  cast: (a: Tensor, dtype: Tensor['dtype']) => Tensor;
}): void {
  castImpl = ops.cast;
  addImpl = ops.add;
  copyImpl = ops.copy;
  onesLikeImpl = ops.onesLike;
}

export interface BackwardOptions {
  /** Keep the graph (and saved tensors) for another backward through it. */
  retainGraph?: boolean;
}

/**
 * Backpropagate from `root`. Without `grad`, root must be a scalar (gradient 1). Gradients are
 * accumulated into `.grad` of every leaf with requiresGrad (as PyTorch does).
 */
export function backward(root: Tensor, grad?: Tensor, options: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error(`backward(): ${root} does not require grad (no input requires grad, or it was computed under noGrad)`);
  if (!grad && root.numel !== 1) throw new Error(`backward(): grad can be implicitly created only for scalar outputs, got shape [${root.shape}]`);
  if (grad && grad.shape.join(',') !== root.shape.join(',')) {
    throw new Error(`backward(): gradient shape [${grad.shape}] does not match output shape [${root.shape}]`);
  }
  const add = addImpl!;
  const copy = copyImpl!;
  const order = topoOrder(root);
  const prev = gradEnabled;
  gradEnabled = false;
  // Gradients created here are owned and freed once consumed; `refs` counts pending uses because
  // a backward may return the same tensor for several inputs (e.g. add passes grad through).
  const owned = new Set<Tensor>();
  const refs = new Map<Tensor, number>();
  const grads = new Map<Tensor, Tensor>();
  const inc = (g: Tensor) => refs.set(g, (refs.get(g) ?? 0) + 1);
  const dec = (g: Tensor) => {
    const n = (refs.get(g) ?? 0) - 1;
    if (n > 0) refs.set(g, n);
    else {
      refs.delete(g);
      if (owned.has(g)) {
        owned.delete(g);
        g.dispose();
      }
    }
  };
  const accumulate = (t: Tensor, g: Tensor) => {
    if (g.shape.join(',') !== t.shape.join(',')) {
      throw new Error(`autograd: gradient of shape [${g.shape}] for a tensor of shape [${t.shape}] (from ${t.gradFn?.name ?? 'leaf'})`);
    }

    const prevG = grads.get(t);
    if (!prevG) {
      grads.set(t, g);
      inc(g);
      return;
    }
    const sum = add(prevG, g);
    owned.add(sum);
    grads.set(t, sum);
    inc(sum);
    dec(prevG);
    // g was consumed by the add: free it unless another input still holds it.
    inc(g);
    dec(g);
  };
  try {
    const seed = grad ?? onesLikeImpl!(root);
    if (!grad) owned.add(seed);
    grads.set(root, seed);
    inc(seed);
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.gradFn;
      if (node) {
        if (!node.backward) throw new Error(`backward(): the graph through ${node.name} was already freed; pass { retainGraph: true } to the first backward()`);
        // In a scope: intermediates the closure creates (e.g. a reshape view before an expand)
        // are disposed now instead of holding their storage until garbage collection.
        const run = node.backward;
        const inGrads = scope(() => run(g));
        // A gradient has its tensor's dtype (as in PyTorch): a backward that computes in f32 for
        // an f16 input (or the reverse, under autocast) is cast here, and its f32 result freed.
        // Except an f32 gradient of an f16 cast of an f32 tensor (autocast's weight copies): it
        // goes on in f32 to the cast, whose backward wants f32 anyway, so a weight gradient the
        // kernel accumulated in f32 (conv, linear) is neither rounded to f16 nor overflows there.
        const cast = new Map<Tensor, Tensor>();
        for (let i = 0; i < node.inputs.length; i++) {
          let gi = inGrads[i];
          const x = node.inputs[i]!;
          if (!gi || !x.requiresGrad) continue;
          if (gi.dtype !== x.dtype && !(gi.dtype === 'f32' && isCastFromF32(x))) {
            const prevCast = cast.get(gi);
            const c = prevCast?.dtype === x.dtype ? prevCast : castImpl!(gi, x.dtype);
            cast.set(gi, c);
            gi = c;
          }
          if (!refs.has(gi) && gi !== g) owned.add(gi);
          accumulate(x, gi);
        }
        for (const orig of cast.keys()) if (orig !== g && !refs.has(orig) && !orig.isDisposed) orig.dispose();
        if (!options.retainGraph) {
          // Free the closure and the saved inputs but leave a marker, so that a second backward
          // through this node fails with a clear message instead of treating it as a leaf.
          node.backward = null;
          t.gradFn = { name: node.name, inputs: [], backward: null };
        }
      } else if (t.requiresGrad) {
        // A leaf: its gradient becomes (or is added to) .grad, which outlives the backward pass.
        let stored: Tensor;
        if (owned.has(g) && g.storage.refs === 1 && g.isContiguous() && (refs.get(g) ?? 0) === 1) {
          owned.delete(g);
          stored = g;
        } else {
          stored = copy(g);
        }
        if (t.grad) {
          const sum = add(t.grad, stored);
          t.grad.dispose();
          stored.dispose();
          stored = sum;
        }
        t.grad = stored.keep();
      }
      dec(g);
    }
  } finally {
    gradEnabled = prev;
    for (const g of owned) if (!g.isDisposed && refs.has(g)) g.dispose();
  }
}

function topoOrder(root: Tensor): Tensor[] {
  // Iterative DFS (graphs of deep nets overflow the JS stack with recursion).
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const x = inputs[i]!;
      if (x.requiresGrad && !visited.has(x)) {
        visited.add(x);
        stack.push([x, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

/** An f16 tensor made by casting an f32 one (its gradient may stay f32). */
function isCastFromF32(t: Tensor): boolean {
  return t.dtype === 'f16' && t.gradFn?.name === 'cast' && t.gradFn.inputs[0]?.dtype === 'f32';
}
