// The readable reference kernel: one output per invocation, a plain loop over K, any strides and
// batch broadcast. Every other matmul kernel is tested against it; the chooser takes it only for
// empty problems.
import { defineKernel } from '../define-kernel';
import { type Epilogue, header, mainBindings, type MatmulLaunch, PARAMS, type Storage, withStorage } from './common';

function code(epi: Epilogue): string {
  return `${header('f32', 'f32', epi)}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  let b = gid.z;
  if (m >= p.M || n >= p.N) { return; }
  let o = batch_offsets(b);
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    acc += ldA(o.x + m * p.sAm + k * p.sAk) * ldB(o.y + k * p.sBk + n * p.sBn);
  }
  C[p.offC + (b * p.M + m) * p.N + n] = epi(acc, n);
}`;
}

const kernel = defineKernel({ name: 'matmul.naive', bindings: mainBindings(false), params: PARAMS, code: (v: Epilogue & Storage) => withStorage(code(v), v) });

/** Never split (the launcher passes K whole). */
export function dispatchNaive(l: MatmulLaunch): void {
  const { M, N, nBatch } = l.pr;
  kernel.dispatch({ ...l.epi, ...l.storage }, l.buffers, l.params, [Math.ceil(N / 8), Math.ceil(M / 8), nBatch]);
}
