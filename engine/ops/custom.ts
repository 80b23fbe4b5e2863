// customOp: a user-defined fused kernel with its own backward, as one declaration. The forward and
// the backward are WGSL statements run once per index `i` of the output (a 1-D launch over its
// elements, or over `threads` when given); the inputs, the output and the gradients are bound as
// f32 storage arrays under the names the declaration gives them, and scalar parameters are in the
// uniform block as `p.<name>`. Built on defineKernel (one pipeline per op, parameters as uniforms,
// so new values compile nothing) and autograd's record (the backward runs when a gradient reaches
// the output). Example, a fused SiLU (y = x·sigmoid(x)) in one dispatch each way:
//
//   const silu = customOp({
//     name: 'my_silu',
//     inputs: ['x'],
//     output: 'y',
//     forward: 'let s = 1.0 / (1.0 + exp(-x[i])); y[i] = x[i] * s;',
//     backward: 'let s = 1.0 / (1.0 + exp(-x[i])); grad_x[i] = grad_y[i] * s * (1.0 + x[i] * (1.0 - s));',
//   });
//   const y = silu([x]);   // y.requiresGrad when x has it; backward(sum(y)) fills x.grad
//
// Rules: inputs are f32 (views are made contiguous first, so `x[i]` indexes elements in row-major
// order); the output is a new contiguous f32 tensor of `outputShape(inputShapes)` (default: the
// first input's shape). The backward sees every input, the output (`y`, as computed by the
// forward) and its gradient (`grad_<output>`), and must write every element of `grad_<input>` for
// each input (an input's gradient has the input's shape; it is dropped when the input does not
// require grad). When an input and the output differ in shape, give `threads`/`backwardThreads`
// and index accordingly (e.g. a reduction over rows: one thread per row). Declare an op once (at
// module level): its name is its kernels' cache key.
import { record } from '../autograd';
import { contiguousCopy, empty, type Tensor } from '../tensor';
import { defineKernel, WGSL_LINEAR_WORKGROUP, type Workgroups } from '../../kernels/define-kernel';

export type CustomParamType = 'f32' | 'u32' | 'i32';

export interface CustomOpSpec {
  /** Unique name (kernels `custom:<name>` and `custom:<name>_bw`; the autograd node's name). */
  name: string;
  /** Binding names of the inputs, in call order (WGSL identifiers, e.g. ['x', 'gate']). */
  inputs: readonly string[];
  /** Binding name of the output (default 'y'). */
  output?: string;
  /** Shape of the output from the inputs' shapes (default: the first input's). */
  outputShape?: (inputShapes: readonly (readonly number[])[]) => readonly number[];
  /** Scalar parameters (uniforms `p.<name>`), in order; their values are given per call. */
  params?: Readonly<Record<string, CustomParamType>>;
  /** WGSL statements for index `i` (u32, below `p.n`): read the inputs, write `<output>[i]`. */
  forward: string;
  /** WGSL statements for index `i`: read the inputs, the output and `grad_<output>`, write
   *  `grad_<input>` for every input. Without it the op is not differentiable (record nothing). */
  backward?: string;
  /** Threads of the forward launch from the output's and inputs' sizes (default: the output's
   *  element count); `p.n` holds it. */
  threads?: (outputNumel: number, inputNumels: readonly number[]) => number;
  /** Threads of the backward launch (default: as the forward). */
  backwardThreads?: (outputNumel: number, inputNumels: readonly number[]) => number;
  /** Extra WGSL functions the bodies use. */
  helpers?: string;
}

/** A declared custom op: call it with the input tensors (and the parameter values). */
export type CustomOp = (inputs: readonly Tensor[], params?: Readonly<Record<string, number>>) => Tensor;

const WG = 256;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function body(helpers: string, statements: string): string {
  return `${WGSL_LINEAR_WORKGROUP}
${helpers}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) { return; }
  ${statements}
}`;
}

const f32Read = { type: 'f32', access: 'read' } as const;
const f32Rw = { type: 'f32', access: 'rw' } as const;

/** Declare a fused elementwise-style op with a hand-written backward (see the file comment). */
export function customOp(spec: CustomOpSpec): CustomOp {
  const out = spec.output ?? 'y';
  const names = [...spec.inputs, out];
  for (const n of names) if (!IDENT.test(n) || n === 'p' || n === 'i') throw new Error(`customOp '${spec.name}': bad binding name '${n}'`);
  if (new Set(names).size !== names.length) throw new Error(`customOp '${spec.name}': binding names must be distinct (${names.join(', ')})`);
  if (spec.inputs.length === 0) throw new Error(`customOp '${spec.name}': needs at least one input`);
  const userParams = spec.params ?? {};
  for (const k of Object.keys(userParams)) if (!IDENT.test(k) || k === 'n') throw new Error(`customOp '${spec.name}': bad parameter name '${k}' ('n' is the thread count)`);
  const params = { n: 'u32', ...userParams } as Record<string, CustomParamType>;
  const helpers = spec.helpers ?? '';

  const fwBindings: Record<string, typeof f32Read | typeof f32Rw> = {};
  for (const n of spec.inputs) fwBindings[n] = f32Read;
  fwBindings[out] = f32Rw;
  const forward = defineKernel({ name: `custom:${spec.name}`, bindings: fwBindings, params, code: () => body(helpers, spec.forward) });

  let backwardKernel: typeof forward | undefined;
  if (spec.backward !== undefined) {
    const bwBindings: Record<string, typeof f32Read | typeof f32Rw> = {};
    for (const n of spec.inputs) bwBindings[n] = f32Read;
    bwBindings[out] = f32Read;
    bwBindings[`grad_${out}`] = f32Read;
    for (const n of spec.inputs) bwBindings[`grad_${n}`] = f32Rw;
    const code = spec.backward;
    backwardKernel = defineKernel({ name: `custom:${spec.name}_bw`, bindings: bwBindings, params, code: () => body(helpers, code) });
  }

  const dense = (t: Tensor): { t: Tensor; copy: boolean } => {
    if (t.dtype !== 'f32') throw new Error(`customOp '${spec.name}': inputs must be f32, got ${t.dtype}`);
    return t.isContiguous() && t.offset === 0 ? { t, copy: false } : { t: contiguousCopy(t), copy: true };
  };
  const uniforms = (n: number, given: Readonly<Record<string, number>>) => {
    const u: Record<string, number> = { n };
    for (const k of Object.keys(userParams)) {
      const v = given[k];
      if (v === undefined) throw new Error(`customOp '${spec.name}': parameter '${k}' is missing`);
      u[k] = v;
    }
    for (const k of Object.keys(given)) if (!(k in userParams)) throw new Error(`customOp '${spec.name}': unknown parameter '${k}'`);
    return u;
  };
  const launch = (k: typeof forward, buffers: Record<string, GPUBuffer>, u: Record<string, number>) => {
    const wg: Workgroups = Math.ceil(u.n! / WG);
    k.dispatch({}, buffers as never, u as never, wg);
  };

  return (inputs, given = {}) => {
    if (inputs.length !== spec.inputs.length) throw new Error(`customOp '${spec.name}': ${inputs.length} inputs given, ${spec.inputs.length} declared`);
    const shapes = inputs.map((t) => t.shape);
    const outShape = spec.outputShape ? spec.outputShape(shapes) : inputs[0]!.shape;
    const y = empty(outShape, 'f32');
    const ins = inputs.map(dense);
    const numels = inputs.map((t) => t.numel);
    const u = uniforms(spec.threads ? spec.threads(y.numel, numels) : y.numel, given);
    const buffers: Record<string, GPUBuffer> = { [out]: y.buffer };
    ins.forEach((d, j) => (buffers[spec.inputs[j]!] = d.t.buffer));
    if (u.n! > 0) launch(forward, buffers, u);
    for (const d of ins) if (d.copy) d.t.dispose();
    if (!backwardKernel) return y;
    const bw = backwardKernel;
    return record(y, spec.name, inputs, (g) => {
      const gd = dense(g);
      const bins = inputs.map(dense);
      const grads = inputs.map((t) => empty(t.shape, 'f32'));
      const b: Record<string, GPUBuffer> = { [out]: y.buffer, [`grad_${out}`]: gd.t.buffer };
      bins.forEach((d, j) => (b[spec.inputs[j]!] = d.t.buffer));
      grads.forEach((t, j) => (b[`grad_${spec.inputs[j]!}`] = t.buffer));
      const ub = uniforms(spec.backwardThreads ? spec.backwardThreads(y.numel, numels) : spec.threads ? spec.threads(y.numel, numels) : y.numel, given);
      if (ub.n! > 0) launch(bw, b, ub);
      for (const d of [gd, ...bins]) if (d.copy) d.t.dispose();
      return grads.map((t, j) => {
        if (inputs[j]!.requiresGrad) return t;
        t.dispose();
        return null;
      });
    });
  };
}
