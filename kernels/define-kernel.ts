// defineKernel: one declaration per kernel, from which everything that used to be written twice is
// generated, so the halves cannot drift apart:
//   - the WGSL storage binding lines (bindings 0..n-1, in declaration order, `array<type>` each)
//     and the uniform block `struct P { ... }` at binding n with `var<uniform> p: P` (16-byte
//     padding inserted; `uniformVar` renames `p`), plus an accessor `p_<name>(i)` for each array
//     parameter;
//   - the TypeScript packing of a `{ field: value }` object into that struct, in declaration order,
//     with type checks (u32: a non-negative integer below 2^32, i32, f32) naming kernel and field;
//   - the pipeline cache key: the kernel name plus every variant value (canonical, so two variants
//     never share a key and one variant always gets the same key);
//   - one cached KernelDef per variant (the runtime compiles one pipeline per key).
// Per dispatch the cost over hand packing is about a microsecond: the variant is found by a quick
// string (validated and canonicalised only when new) and the fields are stored into a scratch.
// A kernel body is `code(variant)`: WGSL text that uses the bindings by name and the parameters as
// `p.<field>`. Where a variant switches code, write the body with the `wgsl` tag exported here
// (wgsl-preprocessor: `#if ${cond}` ... `#elif ${cond}` ... `#else` ... `#endif`). Directives in the
// body (`enable f16;`, `requires ...;`, `diagnostic(...);`) are hoisted above the generated
// declarations, and `enable f16;` is added when a bound array is f16.
//
//   const axpy = defineKernel({
//     name: 'axpy',
//     variants: { wg: [64, 256] },
//     bindings: { x: read('f32'), y: rw('f32') },   // { type, access, when? }; type may be (v) => ...
//     params: { n: 'u32', a: 'f32' },
//     code: (v) => `@compute @workgroup_size(${v.wg}) fn main(...) { ... y[i] += p.a * x[i]; }`,
//   });
//   axpy.dispatch({ wg: 64 }, { x: xBuf, y: yBuf }, { n, a: 2 }, Math.ceil(n / 64));
//
// This is the one kernels/ file that imports the runtime's dispatch API.
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { type KernelDef, rt } from '../runtime/runtime';

export { wgsl };
export { WGSL_LINEAR_WORKGROUP, WGSL_NAN, MAX_WORKGROUPS, rt, type KernelDef } from '../runtime/runtime';

export type ScalarType = 'u32' | 'i32' | 'f32';
/** A scalar field, or a fixed-length array `[type, length]` / `[type, length, fill]` (packed as
 *  `array<vec4u|vec4i|vec4f, ceil(length/4)>`; shorter values are padded with `fill`, default 0). */
export type ParamType = ScalarType | readonly [ScalarType, number] | readonly [ScalarType, number, number];
export type ParamSpec = Readonly<Record<string, ParamType>>;
export type Access = 'read' | 'rw';
export type VariantValue = string | number | boolean;
/** A variant: an object of strings, finite numbers and booleans (an interface is fine). */
export type Variant = object;

export interface BindingDecl<V> {
  /** WGSL element type of the storage array (`f32`, `vec4f`, `atomic<u32>`, ...), or a function of
   *  the variant. */
  type: string | ((v: V) => string);
  access: Access;
  /** Present only in the variants where this returns true (e.g. an optional bias). */
  when?: (v: V) => boolean;
}

/** Shorthands for a fixed-type binding: `{ x: read('f32'), y: rw('vec4f') }`. */
export const read = <T extends string>(type: T) => ({ type, access: 'read' }) as const;
export const rw = <T extends string>(type: T) => ({ type, access: 'rw' }) as const;

export interface KernelSpec<V extends Variant, B extends Record<string, BindingDecl<V>>, P extends ParamSpec> {
  name: string;
  /** The values each variant key may take (checked the first time a variant is seen). Optional: a
   *  kernel may take a typed variant object instead (annotate `code`'s parameter). */
  variants?: { readonly [K in keyof V]: readonly V[K][] };
  bindings: B;
  /** The uniform block, in order; a function of the variant where its shape depends on it (e.g.
   *  one array slot per operand). */
  params?: P | ((v: V) => P);
  code: (v: V) => string;
  entryPoint?: string;
  /** Name of the uniform variable in WGSL (default `p`). */
  uniformVar?: string;
}

type Optional<B> = { [K in keyof B]: B[K] extends { when: (v: never) => boolean } ? K : never }[keyof B];
/** Buffers by binding name: required ones, plus the `when` ones (present iff the variant has them). */
export type BufferArgs<B> = { [K in Exclude<keyof B, Optional<B>>]: GPUBuffer } & { [K in Optional<B>]?: GPUBuffer };
export type ParamArgs<P> = {
  [K in keyof P]: P[K] extends ScalarType ? (P[K] extends 'u32' ? number | boolean : number) : readonly number[];
};
export type Workgroups = number | [number, number?, number?];

export interface Kernel<V extends Variant, B, P> {
  readonly name: string;
  /** Record one dispatch of this variant (see Runtime.dispatch for the workgroup folding). */
  dispatch(variant: V, buffers: BufferArgs<B>, params: ParamArgs<P>, workgroups: Workgroups): void;
  /** The cached KernelDef of a variant. */
  def(variant: V): KernelDef;
  /** The pipeline cache key of a variant. */
  key(variant: V): string;
  /** The uniform bytes of a parameter object (empty when the kernel has no parameters). The
   *  variant is needed only when the parameters are declared as a function of it. */
  pack(params: ParamArgs<P>, variant?: V): Uint8Array;
  /** Every variant of the declared `variants` space (empty object when there is none). */
  variants(): V[];
}

interface Layout {
  fields: Field[];
  names: Set<string>;
  words: number;
  struct: string;
  /** Scratch the dispatch packs into (the runtime copies the bytes out at once). */
  scratch: Scratch;
}

interface Scratch {
  bytes: Uint8Array;
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
}

function scratchOf(words: number): Scratch {
  const buf = new ArrayBuffer(words * 4);
  return { bytes: new Uint8Array(buf), u32: new Uint32Array(buf), i32: new Int32Array(buf), f32: new Float32Array(buf) };
}

interface Entry {
  def: KernelDef;
  layout: Layout;
  /** Active binding names, in binding order. */
  names: string[];
}

interface Field {
  name: string;
  type: ScalarType;
  /** Word offset in the uniform block. */
  offset: number;
  /** Array length (undefined for a scalar). */
  len?: number;
  words: number;
  fill: number;
}

/** Names taken so far: two declarations under one name would share pipeline keys. */
const names = new Set<string>();

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VEC4: Record<ScalarType, string> = { u32: 'vec4u', i32: 'vec4i', f32: 'vec4f' };
const DIRECTIVE = /^[ \t]*(enable|requires|diagnostic)\b[^;\n]*;[ \t]*$/gm;

function layoutOf(name: string, params: ParamSpec, u: string): Layout {
  const fields: Field[] = [];
  const lines: string[] = [];
  const accessors: string[] = [];
  let w = 0;
  let pad = 0;
  const padTo4 = () => {
    while (w % 4) {
      lines.push(`  _pad${pad++}: u32,`);
      w++;
    }
  };
  for (const [field, t] of Object.entries(params)) {
    if (!IDENT.test(field) || field.startsWith('_pad')) throw new Error(`kernel '${name}': bad parameter name '${field}'`);
    if (typeof t === 'string') {
      fields.push({ name: field, type: t, offset: w, words: 1, fill: 0 });
      lines.push(`  ${field}: ${t},`);
      w += 1;
      continue;
    }
    const [type, len, fill = 0] = t;
    if (!Number.isInteger(len) || len < 1) throw new Error(`kernel '${name}': array parameter '${field}' needs a positive length`);
    padTo4();
    const vecs = Math.ceil(len / 4);
    fields.push({ name: field, type, offset: w, len, words: vecs * 4, fill });
    lines.push(`  ${field}: array<${VEC4[type]}, ${vecs}>,`);
    accessors.push(`fn ${u}_${field}(i: u32) -> ${type} { return ${u}.${field}[i >> 2u][i & 3u]; }`);
    w += vecs * 4;
  }
  const names = new Set(fields.map((f) => f.name));
  if (!fields.length) return { fields, names, words: 0, struct: '', scratch: scratchOf(0) };
  padTo4();
  return { fields, names, words: w, scratch: scratchOf(w), struct: [`struct P {`, ...lines, `}`].join('\n') + '\n' + accessors.join('\n') };
}

function fieldName(kernel: string, f: Field, index?: number): string {
  return `kernel '${kernel}': parameter '${f.name}'${index === undefined ? '' : `[${index}]`}`;
}

/** The word to store for value `v` of field `f` (throws, naming kernel and field, when it does not
 *  fit the type). Hot for array fields: no closure is made on the good path. */
function checkValue(kernel: string, f: Field, v: unknown, index?: number): number {
  if (typeof v === 'number') {
    if (f.type === 'f32') return v;
    if (f.type === 'u32' ? Number.isInteger(v) && v >= 0 && v <= 0xffffffff : Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) return v;
    throw new Error(`${fieldName(kernel, f, index)} must be ${f.type === 'u32' ? 'a u32 (an integer in [0, 2^32))' : 'an i32 (an integer in [-2^31, 2^31))'}, got ${v}`);
  }
  if (typeof v === 'boolean' && f.type === 'u32') return v ? 1 : 0;
  throw new Error(`${fieldName(kernel, f, index)} must be a number (${f.type}), got ${typeof v}`);
}

function putWord(sc: Scratch, f: Field, at: number, x: number): void {
  if (f.type === 'u32') sc.u32[at] = x;
  else if (f.type === 'i32') sc.i32[at] = x;
  else sc.f32[at] = x;
}

function slowValue(kernel: string, f: Field, v: unknown): number {
  if (v === undefined) throw new Error(`kernel '${kernel}': parameter '${f.name}' is missing`);
  return checkValue(kernel, f, v);
}

function canonical(kernel: string, v: Variant): string {
  const parts: string[] = [];
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'number' ? !Number.isFinite(x) : typeof x !== 'string' && typeof x !== 'boolean') {
      throw new Error(`kernel '${kernel}': variant '${k}' must be a string, finite number or boolean, got ${String(x)}`);
    }
    parts.push(`${k}=${JSON.stringify(x)}`);
  }
  return `${kernel}(${parts.join(',')})`;
}

export function defineKernel<
  const V extends Variant = Record<never, never>,
  const B extends Record<string, BindingDecl<V>> = Record<string, BindingDecl<V>>,
  const P extends ParamSpec = Record<never, never>,
>(spec: KernelSpec<V, B, P>): Kernel<V, B, P> {
  const { name } = spec;
  if (names.has(name)) throw new Error(`kernel '${name}' is declared twice`);
  names.add(name);
  const bindingNames = Object.keys(spec.bindings);
  for (const b of bindingNames) if (!IDENT.test(b) || b === (spec.uniformVar ?? 'p')) throw new Error(`kernel '${name}': bad binding name '${b}'`);
  const u = spec.uniformVar ?? 'p';
  const staticLayout = typeof spec.params === 'function' ? undefined : layoutOf(name, spec.params ?? {}, u);
  const layoutFor = (v: V): Layout => staticLayout ?? layoutOf(name, (spec.params as (v: V) => P)(v), u);
  const space = spec.variants as Readonly<Record<string, readonly VariantValue[]>> | undefined;
  const entries = new Map<string, Entry>();

  const key = (v: V): string => {
    if (space) {
      const vv = v as Record<string, VariantValue>;
      for (const k of Object.keys(space)) {
        if (!space[k]!.includes(vv[k]!)) throw new Error(`kernel '${name}': variant '${k}' = ${String(vv[k])} is not one of ${space[k]!.join(', ')}`);
      }
      for (const k of Object.keys(v)) if (!(k in space)) throw new Error(`kernel '${name}': unknown variant key '${k}'`);
    }
    return canonical(name, v);
  };
  const active = (v: V) => bindingNames.filter((b) => spec.bindings[b]!.when?.(v) ?? true);

  const build = (v: V, k: string): Entry => {
    const names = active(v);
    const layout = layoutFor(v);
    const decls = names.map((b, i) => {
      const d = spec.bindings[b]!;
      const type = typeof d.type === 'function' ? d.type(v) : d.type;
      return `@group(0) @binding(${i}) var<storage, ${d.access === 'rw' ? 'read_write' : 'read'}> ${b}: array<${type}>;`;
    });
    let body = spec.code(v);
    const directives = new Set<string>();
    body = body.replace(DIRECTIVE, (m) => (directives.add(m.trim()), ''));
    if (decls.some((d) => /\b(f16|vec[234]h)\b/.test(d))) directives.add('enable f16;');
    const code = [
      ...directives,
      ...decls,
      ...(layout.words ? [layout.struct, `@group(0) @binding(${names.length}) var<uniform> ${u}: P;`] : []),
      body,
    ].join('\n');
    const def: KernelDef = {
      key: k,
      code,
      bindings: names.map((b) => spec.bindings[b]!.access),
      uniform: layout.words > 0,
      ...(spec.entryPoint ? { entryPoint: spec.entryPoint } : {}),
    };
    return { def, layout, names };
  };

  // Per dispatch the variant is looked up by a quick string of its keys and typed values in their
  // own order; the canonical key (sorted, validated) is computed only when that string is new.
  const quick = new Map<string, Entry>();
  const entry = (v: V): Entry => {
    let q = '';
    const vv = v as Record<string, unknown>;
    for (const k in vv) {
      const x = vv[k];
      q += typeof x === 'string' ? `${k}\u0001s${x}\u0000` : `${k}\u0001${typeof x}${String(x)}\u0000`;
    }
    let e = quick.get(q);
    if (e) return e;
    const k = key(v);
    e = entries.get(k);
    if (!e) entries.set(k, (e = build(v, k)));
    // A string holding the separators could make two variants' quick strings alike: not cached.
    if (!/[\u0000\u0001]/.test(Object.values(vv).filter((x) => typeof x === 'string').join(''))) quick.set(q, e);
    return e;
  };

  /** Pack into the layout's scratch (every field word is written; padding words stay 0). Hot:
   *  runs on every dispatch, so the common case is plain typed-array stores, and no closure is
   *  made per call (under tsx every nested named function costs a `__name` call each time). */
  const packWith = (layout: Layout, params: ParamArgs<P>): Uint8Array => {
    const given = params as Record<string, unknown>;
    const sc = layout.scratch;
    const { u32, i32, f32 } = sc;
    const fields = layout.fields;
    for (let fi = 0; fi < fields.length; fi++) {
      const f = fields[fi]!;
      const v = given[f.name];
      if (f.len === undefined) {
        if (f.type === 'f32' && typeof v === 'number') f32[f.offset] = v;
        else if (f.type === 'u32' && typeof v === 'number' && v >>> 0 === v) u32[f.offset] = v;
        else if (f.type === 'i32' && typeof v === 'number' && (v | 0) === v) i32[f.offset] = v;
        else putWord(sc, f, f.offset, slowValue(name, f, v));
        continue;
      }
      if (!Array.isArray(v) && !ArrayBuffer.isView(v)) {
        if (v === undefined) throw new Error(`kernel '${name}': parameter '${f.name}' is missing`);
        throw new Error(`kernel '${name}': parameter '${f.name}' must be an array of ${f.type}`);
      }
      const arr = v as ArrayLike<unknown>;
      if (arr.length > f.len) throw new Error(`kernel '${name}': parameter '${f.name}' has ${arr.length} values, at most ${f.len} fit`);
      for (let i = 0; i < f.words; i++) putWord(sc, f, f.offset + i, i < arr.length ? checkValue(name, f, arr[i], i) : f.fill);
    }
    // Every declared field was found; extra keys are typos (or fields of another kernel).
    if (Object.keys(given).length !== fields.length) {
      for (const k of Object.keys(given)) {
        if (given[k] !== undefined && !layout.names.has(k)) throw new Error(`kernel '${name}': unknown parameter '${k}'`);
      }
    }
    return sc.bytes;
  };
  const pack = (params: ParamArgs<P>, variant?: V): Uint8Array => {
    if (staticLayout) return packWith(staticLayout, params).slice();
    if (!variant) throw new Error(`kernel '${name}': its parameters depend on the variant; pass one to pack()`);
    return packWith(entry(variant).layout, params).slice();
  };

  return {
    name,
    def: (v) => entry(v).def,
    key,
    pack,
    dispatch(variant, buffers, params, workgroups) {
      const { def: d, layout, names } = entry(variant);
      const given = buffers as Record<string, GPUBuffer | undefined>;
      const list = new Array<GPUBuffer>(names.length);
      for (let i = 0; i < names.length; i++) {
        const buf = given[names[i]!];
        if (!buf) throw new Error(`kernel '${d.key}': buffer '${names[i]}' is missing`);
        list[i] = buf;
      }
      // Every binding was given; any other defined key is a buffer this variant does not bind.
      let defined = 0;
      for (const b in given) if (given[b] !== undefined) defined++;
      if (defined !== names.length) {
        for (const b in given) {
          if (given[b] !== undefined && !names.includes(b)) {
            throw new Error(`kernel '${d.key}': buffer '${b}' is not a binding of this variant (bindings: ${names.join(', ')})`);
          }
        }
      }
      rt().dispatch(d, list, layout.words ? packWith(layout, params) : undefined, workgroups);
    },
    variants() {
      let out: Record<string, VariantValue>[] = [{}];
      for (const [k, values] of Object.entries(space ?? {})) out = out.flatMap((o) => values.map((x) => ({ ...o, [k]: x })));
      return out as unknown as V[];
    },
  };
}
