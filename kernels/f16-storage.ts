// f16 storage for kernels written over f32 arrays: the body is rewritten so that every element read
// from a named array is widened to f32 (`x[i]` -> `f32(x[i])`) and every store into a named array
// narrowed (`y[i] = e;` -> `y[i] = f16(e);`), leaving the arithmetic, accumulators and workgroup
// memory in f32. A kernel then declares those bindings with the variant's storage type
// (`storageType(h)`); with `h` false the body is returned unchanged, so f32 variants compile
// exactly as before. Stores must be plain assignments (`=`), one statement each.

/** The WGSL element type of a storage array: f16 when `h`, else f32. */
export const storageType = (h: boolean) => (h ? 'f16' : 'f32');

/** Index of the `]` closing the `[` at `open`. */
function closing(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === '[') depth++;
    else if (code[i] === ']' && --depth === 0) return i;
  }
  throw new Error(`f16 storage: unbalanced brackets after offset ${open}`);
}

/** Rewrite `code` for f16 arrays `reads` (loaded) and `writes` (stored); unchanged unless `h`. */
export function withF16Storage(code: string, h: boolean, reads: readonly string[], writes: readonly string[]): string {
  if (!h) return code;
  let out = code;
  for (const name of writes) {
    const re = new RegExp(`\\b${name}\\[`, 'g');
    let res = '';
    let last = 0;
    for (let m = re.exec(out); m; m = re.exec(out)) {
      const close = closing(out, m.index + name.length);
      const rest = out.slice(close + 1);
      const assign = /^\s*=(?!=)\s*/.exec(rest);
      if (!assign) throw new Error(`f16 storage: '${name}' is written other than by a plain '=' store`);
      const start = close + 1 + assign[0].length;
      const end = out.indexOf(';', start);
      res += `${out.slice(last, start)}f16(${out.slice(start, end)})`;
      last = end;
      re.lastIndex = end;
    }
    out = res + out.slice(last);
  }
  for (const name of reads) {
    const re = new RegExp(`\\b${name}\\[`, 'g');
    let res = '';
    let last = 0;
    for (let m = re.exec(out); m; m = re.exec(out)) {
      const close = closing(out, m.index + name.length);
      res += `${out.slice(last, m.index)}f32(${out.slice(m.index, close + 1)})`;
      last = close + 1;
      re.lastIndex = close + 1;
    }
    out = res + out.slice(last);
  }
  return out;
}
