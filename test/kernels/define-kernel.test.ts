// defineKernel: the generated WGSL declarations, the uniform packing byte for byte, cache keys
// that differ across variants, the errors a wrong call gets, and real dispatches (runWgsl on the
// generated code, and rt().dispatch through the kernel handle).
import { beforeAll, describe, expect, it } from 'vitest';
import { init, Params, rt } from '../../runtime/runtime';
import { defineKernel, wgsl } from '../../kernels/define-kernel';
import { runWgsl } from '../util';

const axpy = defineKernel({
  name: 'test_axpy',
  variants: { op: ['add', 'sub'], wg: [64, 128] },
  bindings: {
    x: { type: 'f32', access: 'read' },
    bias: { type: 'f32', access: 'read', when: (v) => v.op === 'add' },
    y: { type: 'f32', access: 'rw' },
  },
  params: { n: 'u32', a: 'f32', shape: ['u32', 8, 1], off: 'i32' },
  code: (v) => wgsl`
@compute @workgroup_size(${v.wg})
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= p.n) { return; }
#if ${v.op === 'add'}
  y[i] = p.a * x[i] + bias[i] + f32(p_shape(1u)) + f32(p.off);
#else
  y[i] = p.a * x[i] - f32(p_shape(1u)) - f32(p.off);
#endif
}`,
});

describe('defineKernel', () => {
  it('generates the binding lines, the padded uniform struct and the array accessor', () => {
    const add = axpy.def({ op: 'add', wg: 64 });
    expect(add.bindings).toEqual(['read', 'read', 'rw']);
    expect(add.uniform).toBe(true);
    expect(add.code).toContain(
      [
        '@group(0) @binding(0) var<storage, read> x: array<f32>;',
        '@group(0) @binding(1) var<storage, read> bias: array<f32>;',
        '@group(0) @binding(2) var<storage, read_write> y: array<f32>;',
        'struct P {',
        '  n: u32,',
        '  a: f32,',
        '  _pad0: u32,',
        '  _pad1: u32,',
        '  shape: array<vec4u, 2>,',
        '  off: i32,',
        '  _pad2: u32,',
        '  _pad3: u32,',
        '  _pad4: u32,',
        '}',
        'fn p_shape(i: u32) -> u32 { return p.shape[i >> 2u][i & 3u]; }',
        '@group(0) @binding(3) var<uniform> p: P;',
      ].join('\n'),
    );
    expect(add.code).toContain('+ bias[i]');
    const sub = axpy.def({ op: 'sub', wg: 128 });
    expect(sub.bindings).toEqual(['read', 'rw']);
    expect(sub.code).toContain('@group(0) @binding(1) var<storage, read_write> y: array<f32>;');
    expect(sub.code).toContain('@group(0) @binding(2) var<uniform> p: P;');
    expect(sub.code).not.toContain('bias');
    expect(sub.code).toContain('@workgroup_size(128)');
    expect(sub.code).not.toContain('#');
  });

  it('packs parameters byte for byte as Params did by hand', () => {
    const bytes = axpy.pack({ n: 7, a: -1.5, shape: [2, 3, 4], off: -5 });
    const ref = new Params().u(7).f(-1.5).u(0, 0).uArray([2, 3, 4], 8, 1).i(-5).bytes();
    expect(Array.from(bytes)).toEqual(Array.from(ref));
    expect(bytes.byteLength).toBe(64);
    expect(axpy.pack({ n: true, a: 0, shape: [], off: 0 })[0]).toBe(1);
  });

  it('packs every word on each call (no value of an earlier call survives)', () => {
    const a = axpy.pack({ n: 1, a: 2, shape: [9, 9, 9, 9, 9, 9, 9, 9], off: 3 });
    const b = axpy.pack({ n: 4, a: 5, shape: [2], off: -6 });
    expect(Array.from(a)).toEqual(Array.from(new Params().u(1).f(2).u(0, 0).uArray([9, 9, 9, 9, 9, 9, 9, 9], 8, 1).i(3).bytes()));
    expect(Array.from(b)).toEqual(Array.from(new Params().u(4).f(5).u(0, 0).uArray([2], 8, 1).i(-6).bytes()));
  });

  it('hoists directives and enables f16 for f16 bindings', () => {
    const k = defineKernel({
      name: 'test_f16',
      variants: { dtype: ['f32', 'f16'] },
      bindings: { x: { type: (v) => v.dtype, access: 'rw' } },
      code: (v) => `${v.dtype === 'f16' ? 'enable f16;' : ''}\n@compute @workgroup_size(1) fn main() { x[0] = x[0]; }`,
    });
    const f16 = k.def({ dtype: 'f16' }).code;
    expect(f16.startsWith('enable f16;\n@group(0) @binding(0) var<storage, read_write> x: array<f16>;')).toBe(true);
    expect(f16.match(/enable f16;/g)).toHaveLength(1);
    expect(k.def({ dtype: 'f32' }).code).not.toContain('enable');
    expect(k.def({ dtype: 'f32' }).uniform).toBe(false);
  });

  it('gives every variant its own cache key and reuses one KernelDef per variant', () => {
    const all = axpy.variants();
    expect(all).toHaveLength(4);
    const keys = new Set(all.map((v) => axpy.key(v)));
    expect(keys.size).toBe(4);
    for (const k of keys) expect(k.startsWith('test_axpy(')).toBe(true);
    expect(axpy.key({ wg: 64, op: 'add' })).toBe(axpy.key({ op: 'add', wg: 64 }));
    expect(axpy.def({ op: 'add', wg: 64 })).toBe(axpy.def({ wg: 64, op: 'add' }));
    // Typed variants without a declared space: values that print alike still get distinct keys.
    const t = defineKernel({ name: 't', bindings: { x: { type: 'f32', access: 'rw' } }, code: (_v: { a: string | number }) => '' });
    expect(t.key({ a: '1' })).not.toBe(t.key({ a: 1 }));
    expect(t.key({ a: 'x,b=1' })).not.toBe(t.key({ a: 'x' }));
    // The per-dispatch lookup keeps them apart too, separators in strings included.
    const defs = [{ a: '1' }, { a: 1 }, { a: 'x\u0000' }, { a: 'x' }, { a: 'true' }, { a: true } as never].map((v) => t.def(v));
    expect(new Set(defs.map((d) => d.key)).size).toBe(6);
    expect(t.def({ a: 'x\u0000' })).toBe(defs[2]);
  });

  it('takes parameters that depend on the variant, and a custom uniform name', () => {
    const k = defineKernel({
      name: 'test_operands',
      uniformVar: 'q',
      bindings: { out: { type: 'u32', access: 'rw' } },
      params: (v: { n: number }) => ({ count: 'u32', offs: ['u32', 4 * Math.max(1, Math.ceil(v.n / 4))] }) as const,
      code: () => '@compute @workgroup_size(1) fn main() { out[0] = q.count + q_offs(0u); }',
    });
    expect(k.def({ n: 5 }).code).toContain('offs: array<vec4u, 2>');
    expect(k.def({ n: 5 }).code).toContain('fn q_offs(i: u32) -> u32 { return q.offs[i >> 2u][i & 3u]; }');
    expect(k.def({ n: 5 }).code).toContain('var<uniform> q: P;');
    expect(k.def({ n: 2 }).code).toContain('offs: array<vec4u, 1>');
    expect(k.pack({ count: 3, offs: [1, 2, 3, 4, 5] }, { n: 5 }).byteLength).toBe(48);
    expect(() => k.pack({ count: 3, offs: [] })).toThrow(/pass one to pack/);
  });

  it('rejects a second declaration under the same name', () => {
    expect(() => defineKernel({ name: 'test_axpy', bindings: { x: { type: 'f32', access: 'rw' } }, code: () => '' })).toThrow(/declared twice/);
  });

  it('types buffers, parameters and variants from the declaration', () => {
    const check = (f: () => void) => expect(f).toThrow();
    const ok = { n: 1, a: 0, shape: [1], off: 0 };
    // @ts-expect-error: 'mul' is not a declared value of op
    check(() => axpy.def({ op: 'mul', wg: 64 }));
    // @ts-expect-error: 'a' is missing
    check(() => axpy.pack({ n: 1, shape: [], off: 0 }));
    // @ts-expect-error: an array parameter takes numbers
    check(() => axpy.pack({ ...ok, shape: 3 }));
    // @ts-expect-error: 'y' is required
    check(() => axpy.dispatch({ op: 'sub', wg: 64 }, { x: {} as GPUBuffer }, ok, 1));
  });

  it('names the kernel and field in errors', () => {
    const ok = { n: 1, a: 0, shape: [1], off: 0 };
    expect(() => axpy.pack({ ...ok, n: -1 })).toThrow(/test_axpy.*'n'.*u32/);
    expect(() => axpy.pack({ ...ok, n: 1.5 })).toThrow(/test_axpy.*'n'/);
    expect(() => axpy.pack({ ...ok, off: 2 ** 31 })).toThrow(/'off'.*i32/);
    expect(() => axpy.pack({ ...ok, shape: [1, 2, 3, 4, 5, 6, 7, 8, 9] })).toThrow(/'shape'.*9 values/);
    expect(() => axpy.pack({ ...ok, shape: [1, -2] })).toThrow(/'shape'\[1\]/);
    const { n: _, ...missing } = ok;
    expect(() => axpy.pack(missing as typeof ok)).toThrow(/'n' is missing/);
    expect(() => axpy.pack({ ...ok, extra: 1 } as typeof ok)).toThrow(/unknown parameter 'extra'/);
    expect(() => axpy.def({ op: 'mul' as 'add', wg: 64 })).toThrow(/test_axpy.*'op' = mul/);
    expect(() => defineKernel({ name: 'bad', bindings: { p: { type: 'f32', access: 'rw' } }, code: () => '' })).toThrow(/binding name 'p'/);
  });
});

describe('defineKernel on the GPU', () => {
  beforeAll(async () => {
    await init();
  });

  it('runs the generated code through runWgsl', async () => {
    const n = 70;
    const x = Float32Array.from({ length: n }, (_, i) => i - 30);
    const def = axpy.def({ op: 'sub', wg: 64 });
    const [y] = await runWgsl({
      code: def.code,
      label: def.key,
      inputs: [x],
      outputs: [{ length: n }],
      uniforms: axpy.pack({ n, a: 2, shape: [5, 3], off: -1 }),
      workgroups: [Math.ceil(n / 64)],
    });
    expect(Array.from(y!)).toEqual(Array.from(x, (v) => 2 * v - 3 + 1));
  });

  it('dispatches through rt() with buffers by name, and rejects missing or extra buffers', async () => {
    const r = rt();
    const n = 300;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const mk = (data: Float32Array) => {
      const b = r.device.createBuffer({ size: data.byteLength, usage });
      r.write(b, 0, data);
      return b;
    };
    const x = mk(Float32Array.from({ length: n }, (_, i) => i * 0.5));
    const bias = mk(Float32Array.from({ length: n }, (_, i) => -i));
    const y = mk(new Float32Array(n).fill(NaN));
    const v = { op: 'add', wg: 128 } as const;
    axpy.dispatch(v, { x, bias, y }, { n, a: 4, shape: [0, 10], off: 2 }, Math.ceil(n / 128));
    const out = new Float32Array(await r.read(y, 0, n * 4));
    expect(Array.from(out)).toEqual(Array.from({ length: n }, (_, i) => 4 * i * 0.5 - i + 10 + 2));
    const params = { n, a: 1, shape: [], off: 0 };
    expect(() => axpy.dispatch(v, { x, y } as never, params, 1)).toThrow(/buffer 'bias' is missing/);
    expect(() => axpy.dispatch({ op: 'sub', wg: 64 }, { x, bias, y }, params, 1)).toThrow(/buffer 'bias' is not a binding/);
    for (const b of [x, bias, y]) b.destroy();
  });
});
