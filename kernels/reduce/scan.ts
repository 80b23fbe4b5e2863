// Inclusive prefix sum (cumsum) along contiguous rows [rows, len], optionally in reverse (a suffix
// sum: the gradient of cumsum). One 256-thread workgroup per row walks the row in tiles of 256:
// each tile is scanned in shared memory (Hillis-Steele) and offset by the running total of the
// tiles before it. Over one storage binding, blocks of rows run through binding windows (a single
// row over the limit is refused with an error naming the op).
import { DTYPE_BYTES, type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { overBindingLimit, rowBlocks, windowRange } from '../large';

const WG = 256;

const cumsum = defineKernel({
  name: 'scan:cumsum',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.inType], access: 'read' },
    dst: { type: (v) => WGSL_STORAGE[v.outType], access: 'rw' },
  },
  params: { rows: 'u32', len: 'u32', src_off: 'u32', dst_off: 'u32', reverse: 'u32' },
  code: ({ outType }: { inType: DType; outType: DType }) => {
    const acc = WGSL_COMPUTE[outType];
    return /* wgsl */ `
var<workgroup> sh: array<${acc}, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let src_base = p.src_off + row * p.len;
  let dst_base = p.dst_off + row * p.len;
  var carry = ${acc}(0);
  for (var tile = 0u; tile < p.len; tile += ${WG}u) {
    let k = tile + lid; // position in scan order
    // Reverse mode scans the row from its end: position k is element len-1-k.
    let j = select(k, p.len - 1u - k, p.reverse != 0u);
    var v = ${acc}(0);
    if (k < p.len) { v = ${acc}(src[src_base + j]); }
    sh[lid] = v;
    workgroupBarrier();
    for (var s = 1u; s < ${WG}u; s <<= 1u) {
      var add = ${acc}(0);
      if (lid >= s) { add = sh[lid - s]; }
      workgroupBarrier();
      sh[lid] = sh[lid] + add;
      workgroupBarrier();
    }
    if (k < p.len) { dst[dst_base + j] = ${WGSL_STORAGE[outType]}(carry + sh[lid]); }
    carry = carry + sh[${WG - 1}u];
    workgroupBarrier();
  }
}`;
  },
});

/** dst[rows, len] (from element 0) = inclusive cumsum (or reverse cumsum) of the rows of src. */
export function launchCumsum(src: GPUBuffer, srcOffset: number, inType: DType, dst: GPUBuffer, outType: DType, rows: number, len: number, reverse = false): void {
  if (!overBindingLimit(src, dst)) {
    cumsum.dispatch({ inType, outType }, { src, dst }, { rows, len, src_off: srcOffset, dst_off: 0, reverse }, rows);
    return;
  }
  const inB = DTYPE_BYTES[inType];
  const outB = DTYPE_BYTES[outType];
  for (const { start, count } of rowBlocks('cumsum', rows, len * Math.max(inB, outB))) {
    const sw = windowRange(src, srcOffset + start * len, count * len, inB);
    const dw = windowRange(dst, start * len, count * len, outB);
    cumsum.dispatch({ inType, outType }, { src: sw.buffer, dst: dw.buffer }, { rows: count, len, src_off: sw.offset, dst_off: dw.offset, reverse }, count);
  }
}
