// The import graph of the source tree: layers import only downwards, and no file imports itself
// back through others. Layers, lowest first:
//   runtime < kernels < engine < structures < models < pipeline (the application) < bench < web
// A file may import its own layer and the layers below it (web/, the browser page, is on top:
// nothing imports it). structures/ is plain TypeScript shared
// by models and pipeline: below it, only runtime/errors.ts. bench/ may import the layers below; nothing
// imports bench/, test/ or scripts/. dev/ (superseded kernels kept for A/B experiments) may import
// anything in the layers and itself; nothing in the layers imports dev/. Every static
// `import`/`export ... from`, `import type` and dynamic `import('...')` counts (type-only imports
// too: a type cycle is still a cycle to a reader).
//
// Inside pipeline/ (the application) the folders are sub-layers, lowest first:
//   io < data < (fusion, shape, viz) < post < evaluation < engine < zoo < cli
// A folder may import its own files and the folders of lower ranks; folders of one rank do not
// import each other. pipeline/index.ts (the library API) may import every folder but cli/; nothing
// in pipeline/ imports index.ts. The CLI's command files (pipeline/cli/commands/) never import each
// other and only pipeline/cli/main.ts imports them (shared option parsers: pipeline/cli/args.ts).
// File and folder names in pipeline/ and test/pipeline/ are kebab-case, and test/pipeline/ mirrors
// pipeline/'s folders.
// The scanner below is self-contained (no TypeScript compiler: the GPU-machine runs ship without it).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LAYERS = ['runtime', 'kernels', 'engine', 'structures', 'models', 'pipeline', 'bench', 'web'] as const;
/** What structures/ may take from below it (pure data code: errors only). */
const STRUCTURES_MAY_IMPORT = new Set(['runtime/errors.ts']);
/** Folders no layer may import from (dev/ may import itself). */
const NEVER_IMPORTED = ['test/', 'scripts/', 'dev/'];
/** Scanned besides the layers: its imports must resolve and make no cycles. */
const OUTSIDE_LAYERS = ['dev'];

/** The application's sub-layers (folders of pipeline/), lowest first; folders of one rank are peers. */
const PIPELINE_LAYERS: readonly (readonly string[])[] = [['io'], ['data'], ['fusion', 'shape', 'viz'], ['post'], ['evaluation'], ['engine'], ['zoo'], ['cli']];
const PIPELINE_ORDER = PIPELINE_LAYERS.map((g) => (g.length > 1 ? `(${g.join(', ')})` : g[0])).join(' < ');
const PIPELINE_INDEX = 'pipeline/index.ts';
const COMMANDS_DIR = 'pipeline/cli/commands/';
const CLI_MAIN = 'pipeline/cli/main.ts';

interface Edge {
  from: string;
  to: string;
  spec: string;
  line: number;
}

interface Token {
  kind: 'id' | 'str' | 'punct';
  text: string;
  line: number;
}

const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'case', 'in', 'of', 'new', 'delete', 'void', 'throw', 'else', 'do', 'yield', 'await', 'instanceof']);

/** Identifiers, string literals and punctuation of a TypeScript source, without comments, template
 *  literal text or regular expression literals (whose contents could look like imports). */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  // Template literal nesting: for each open `${`, the brace depth at which it closes.
  const templates: number[] = [];
  let depth = 0;
  const skipTemplate = () => {
    // At the character after a backtick or after the `}` closing a `${...}`; stops after the
    // closing backtick or after a `${` (pushing the template on the stack).
    while (i < src.length) {
      const c = src[i]!;
      if (c === '\\') i += 2;
      else if (c === '`') {
        i++;
        return;
      } else if (c === '$' && src[i + 1] === '{') {
        i += 2;
        templates.push(depth);
        depth++;
        return;
      } else {
        if (c === '\n') line++;
        i++;
      }
    }
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      let text = '';
      while (j < src.length && src[j] !== c && src[j] !== '\n') {
        if (src[j] === '\\') {
          text += src[j + 1];
          j += 2;
        } else text += src[j++];
      }
      out.push({ kind: 'str', text, line });
      i = j + 1;
    } else if (c === '`') {
      i++;
      skipTemplate();
      out.push({ kind: 'str', text: '`', line });
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w$]/.test(src[j]!)) j++;
      out.push({ kind: 'id', text: src.slice(i, j), line });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w.]/.test(src[j]!)) j++;
      out.push({ kind: 'id', text: src.slice(i, j), line });
      i = j;
    } else if (c === '/') {
      const prev = out[out.length - 1];
      const regex = !prev || (prev.kind === 'punct' && !/^[)\]]$/.test(prev.text)) || (prev.kind === 'id' && REGEX_AFTER_WORD.has(prev.text));
      if (regex) {
        let j = i + 1;
        let inClass = false;
        while (j < src.length && src[j] !== '\n') {
          if (src[j] === '\\') j++;
          else if (src[j] === '[') inClass = true;
          else if (src[j] === ']') inClass = false;
          else if (src[j] === '/' && !inClass) break;
          j++;
        }
        j++;
        while (j < src.length && /[a-z]/.test(src[j]!)) j++;
        out.push({ kind: 'str', text: '/regex/', line });
        i = j;
      } else {
        out.push({ kind: 'punct', text: c, line });
        i++;
      }
    } else {
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (templates.length && templates[templates.length - 1] === depth) {
          templates.pop();
          i++;
          skipTemplate();
          continue;
        }
      }
      out.push({ kind: 'punct', text: c, line });
      i++;
    }
  }
  return out;
}

/** Module specifiers of a source: `import ... from 'x'`, `import 'x'`, `export ... from 'x'`,
 *  `import('x')` (dynamic or in a type). */
function importSpecs(src: string): { spec: string; line: number }[] {
  const t = tokenize(src);
  const out: { spec: string; line: number }[] = [];
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!;
    if (tok.kind !== 'id' || (tok.text !== 'import' && tok.text !== 'export') || t[k - 1]?.text === '.') continue;
    const next = t[k + 1];
    if (tok.text === 'import' && next?.text === '(' && t[k + 2]?.kind === 'str' && t[k + 3]?.text === ')') {
      out.push({ spec: t[k + 2]!.text, line: t[k + 2]!.line });
      continue;
    }
    if (tok.text === 'import' && next?.kind === 'str') {
      out.push({ spec: next.text, line: next.line });
      continue;
    }
    // The import/export clause: names, braces, commas, `*`, `as`, `type`, then `from 'x'`.
    for (let j = k + 1; j < t.length; j++) {
      const u = t[j]!;
      if (u.kind === 'id' && u.text === 'from' && t[j + 1]?.kind === 'str') {
        out.push({ spec: t[j + 1]!.text, line: t[j + 1]!.line });
        break;
      }
      if (u.kind === 'str' || (u.kind === 'punct' && !['{', '}', ',', '*'].includes(u.text))) break;
      if (u.kind === 'id' && ['function', 'class', 'const', 'let', 'var', 'enum', 'interface', 'default', 'abstract', 'declare', 'async', 'namespace'].includes(u.text)) break;
    }
  }
  return out;
}

/** Relative imports of each file (paths relative to the repository root, '/'-separated). */
function importEdges(sources: ReadonlyMap<string, string>, exists: (path: string) => boolean): { edges: Edge[]; unresolved: Edge[] } {
  const edges: Edge[] = [];
  const unresolved: Edge[] = [];
  for (const [from, text] of sources) {
    for (const { spec, line } of importSpecs(text)) {
      if (!spec.startsWith('.')) continue;
      const base = posix.normalize(posix.join(posix.dirname(from), spec));
      const to = [base, `${base}.ts`, `${base}/index.ts`].find((p) => p.endsWith('.ts') && exists(p)) ?? (exists(base) ? base : undefined);
      (to ? edges : unresolved).push({ from, to: to ?? base, spec, line });
    }
  }
  return { edges, unresolved };
}

const layerOf = (path: string): number => LAYERS.findIndex((l) => path.startsWith(`${l}/`));

/** Imports that break the layer order, as one line each naming the file, line and import. */
function layerViolations(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    const to = layerOf(e.to);
    const where = `${e.from}:${e.line} imports '${e.spec}' (${e.to})`;
    if (NEVER_IMPORTED.some((p) => e.to.startsWith(p) && !e.from.startsWith(p))) out.push(`${where}: nothing in the source tree may import ${e.to.split('/')[0]}/`);
    else if (from < 0) continue;
    else if (to < 0) out.push(`${where}: the target is outside the layers ${LAYERS.join(' < ')}`);
    else if (to > from) out.push(`${where}: ${LAYERS[from]}/ may not import ${LAYERS[to]}/ (layers: ${LAYERS.join(' < ')})`);
    else if (LAYERS[from] === 'structures' && to < from && !STRUCTURES_MAY_IMPORT.has(e.to)) {
      out.push(`${where}: structures/ may import only ${[...STRUCTURES_MAY_IMPORT].join(', ')} from below it`);
    }
  }
  return out;
}

/** Import cycles (strongly connected components of more than one file, or a file importing
 *  itself), each written as one concrete loop `a.ts -> b.ts -> a.ts` with the import lines. */
function importCycles(files: readonly string[], edges: readonly Edge[]): string[] {
  const adj = new Map<string, Edge[]>(files.map((f) => [f, []]));
  for (const e of edges) adj.get(e.from)?.push(e);
  // Tarjan's strongly connected components, iteratively (no recursion limit on long chains).
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  let next = 0;
  for (const root of files) {
    if (index.has(root)) continue;
    const work: [string, number][] = [[root, 0]];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const top = work[work.length - 1]!;
      const [v, i] = top;
      const out = adj.get(v)!;
      if (i < out.length) {
        top[1]++;
        const w = out[i]!.to;
        if (!adj.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]![0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || out.some((e) => e.to === v)) sccs.push(scc);
      }
    }
  }
  return sccs.map((scc) => {
    // One loop through the component: breadth-first from its first file back to itself.
    const members = new Set(scc);
    const start = [...scc].sort()[0]!;
    const via = new Map<string, Edge>();
    const queue = [start];
    let closing: Edge | undefined;
    while (queue.length && !closing) {
      const v = queue.shift()!;
      for (const e of adj.get(v)!) {
        if (!members.has(e.to)) continue;
        if (e.to === start) {
          closing = e;
          break;
        }
        if (!via.has(e.to)) {
          via.set(e.to, e);
          queue.push(e.to);
        }
      }
    }
    const loop: Edge[] = [closing!];
    for (let v = closing!.from; v !== start; v = via.get(v)!.from) loop.unshift(via.get(v)!);
    return `import cycle: ${loop.map((e) => `${e.from}:${e.line} imports '${e.spec}'`).join(' -> ')} -> back to ${start}`;
  });
}

/** The sub-layer of a pipeline/ file: its folder directly under pipeline/ and that folder's rank. */
function subLayerOf(path: string): { name: string; rank: number } | undefined {
  const m = /^pipeline\/([^/]+)\//.exec(path);
  if (!m) return undefined;
  const rank = PIPELINE_LAYERS.findIndex((g) => g.includes(m[1]!));
  return rank < 0 ? undefined : { name: m[1]!, rank };
}

/** Breaches of the application's rules (sub-layer order, commands, index.ts), one line each. */
function pipelineViolations(files: readonly string[], edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (f.startsWith('pipeline/') && f !== PIPELINE_INDEX && !subLayerOf(f)) out.push(`${f}: not in a sub-layer folder of pipeline/ (${PIPELINE_ORDER})`);
  }
  for (const e of edges) {
    if (!e.from.startsWith('pipeline/') || !e.to.startsWith('pipeline/')) continue;
    const where = `${e.from}:${e.line} imports '${e.spec}' (${e.to})`;
    if (e.to === PIPELINE_INDEX) {
      out.push(`${where}: nothing in pipeline/ imports ${PIPELINE_INDEX} (the library API for users outside)`);
      continue;
    }
    if (e.to.startsWith(COMMANDS_DIR) && e.from.startsWith(COMMANDS_DIR)) {
      out.push(`${where}: a command may not import another command (shared option parsers go in pipeline/cli/args.ts, the rest in the library)`);
      continue;
    }
    if (e.to.startsWith(COMMANDS_DIR) && e.from !== CLI_MAIN) {
      out.push(`${where}: only ${CLI_MAIN} imports the commands`);
      continue;
    }
    const from = subLayerOf(e.from);
    const to = subLayerOf(e.to);
    if (!to) continue; // a file outside the sub-layers, reported above
    if (e.from === PIPELINE_INDEX) {
      if (to.name === 'cli') out.push(`${where}: ${PIPELINE_INDEX} (the library API) may not import pipeline/cli/`);
      continue;
    }
    if (!from || from.name === to.name) continue;
    if (to.rank >= from.rank) out.push(`${where}: pipeline/${from.name}/ may not import pipeline/${to.name}/ (sub-layers: ${PIPELINE_ORDER})`);
  }
  return out;
}

const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Names that are not kebab-case (.ts files and folders; `.test.ts` counts as the extension) and
 *  test folders with no source folder of the same path. `paths` are files, relative to the root. */
function namingViolations(paths: readonly string[], sourceDirs: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    const name = parts[parts.length - 1]!;
    for (let i = 1; i < parts.length - 1; i++) {
      const dir = parts.slice(0, i + 1).join('/');
      if (!(dir === 'test/pipeline' || KEBAB.test(parts[i]!))) out.add(`${dir}/: folder name is not kebab-case`);
    }
    if (name.endsWith('.ts') && !KEBAB.test(name.replace(/(\.test)?\.ts$/, ''))) out.add(`${p}: file name is not kebab-case`);
    if (p.startsWith('test/pipeline/') && p.endsWith('.ts') && !p.startsWith('test/pipeline/fixtures/')) {
      const dir = posix.dirname(p).replace(/^test\//, '');
      if (dir !== 'pipeline' && !sourceDirs.has(dir)) out.add(`${p}: test/${dir}/ has no source folder ${dir}/ (test/pipeline/ mirrors pipeline/)`);
    }
  }
  return [...out];
}

function allFiles(root: string, rel: string): string[] {
  const out: string[] = [];
  const walk = (r: string) => {
    for (const name of readdirSync(posix.join(root, r))) {
      const p = `${r}/${name}`;
      if (statSync(posix.join(root, p)).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(rel);
  return out;
}

function sourceFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(posix.join(root, rel))) {
      const p = `${rel}/${name}`;
      if (statSync(posix.join(root, p)).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) out.set(p, readFileSync(posix.join(root, p), 'utf8'));
    }
  };
  for (const layer of [...LAYERS, ...OUTSIDE_LAYERS]) walk(layer);
  return out;
}

describe('architecture', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const sources = sourceFiles(root);
  const exists = (p: string) => {
    try {
      return statSync(posix.join(root, p)).isFile();
    } catch {
      return false;
    }
  };
  const { edges, unresolved } = importEdges(sources, exists);

  it('reads the layer folders and their imports', () => {
    for (const layer of LAYERS) expect([...sources.keys()].some((p) => p.startsWith(`${layer}/`)), `no .ts files under ${layer}/`).toBe(true);
    expect(edges.length).toBeGreaterThan(500);
    expect(unresolved.map((e) => `${e.from}:${e.line} imports '${e.spec}', which does not exist`)).toEqual([]);
  });

  it(`imports run downwards only: ${LAYERS.join(' < ')}`, () => {
    const violations = layerViolations(edges);
    expect(violations, violations.join('\n')).toEqual([]);
  });

  it(`pipeline/ sub-layers import downwards only: ${PIPELINE_ORDER}; commands import no command`, () => {
    const violations = pipelineViolations([...sources.keys()], edges);
    expect(violations, violations.join('\n')).toEqual([]);
    // The rule has something to check: the sub-layers and the commands exist.
    for (const g of PIPELINE_LAYERS) for (const l of g) expect([...sources.keys()].some((p) => p.startsWith(`pipeline/${l}/`)), `no .ts files under pipeline/${l}/`).toBe(true);
    expect([...sources.keys()].filter((p) => p.startsWith(COMMANDS_DIR)).length).toBeGreaterThan(10);
  });

  it('pipeline/ and test/pipeline/ names are kebab-case; test/pipeline/ mirrors pipeline/', () => {
    const src = allFiles(root, 'pipeline');
    const dirs = new Set(src.map((p) => posix.dirname(p)));
    const violations = namingViolations([...src, ...allFiles(root, 'test/pipeline')], dirs);
    expect(violations, violations.join('\n')).toEqual([]);
  });

  it('has no import cycles', () => {
    const cycles = importCycles([...sources.keys()], edges);
    expect(cycles, cycles.join('\n')).toEqual([]);
  });

  it('names the offending file and import when a rule is broken', () => {
    const fake = new Map([
      ['kernels/a.ts', "import { t } from '../engine/tensor';\nexport const a = 1;"],
      ['engine/tensor.ts', "import type { G } from './autograd';\nexport const t = 1;"],
      ['engine/autograd.ts', "import { t } from './tensor';\nexport type G = number;"],
      ['structures/s.ts', "import { rt } from '../runtime/runtime';\nimport { E } from '../runtime/errors';"],
      ['models/m.ts', "const p = await import('../pipeline/x');"],
      ['pipeline/x.ts', "import { b } from '../bench/harness';"],
      ['bench/b.ts', "import { k } from '../dev/conv/k';"],
      ['dev/conv/k.ts', "import { j } from './j';\nimport { t } from '../../engine/tensor';"],
    ]);
    const has = (p: string) => fake.has(p) || ['runtime/runtime.ts', 'runtime/errors.ts', 'bench/harness.ts', 'dev/conv/j.ts'].includes(p);
    const g = importEdges(fake, has);
    expect(layerViolations(g.edges)).toEqual([
      "kernels/a.ts:1 imports '../engine/tensor' (engine/tensor.ts): kernels/ may not import engine/ (layers: runtime < kernels < engine < structures < models < pipeline < bench < web)",
      "structures/s.ts:1 imports '../runtime/runtime' (runtime/runtime.ts): structures/ may import only runtime/errors.ts from below it",
      "models/m.ts:1 imports '../pipeline/x' (pipeline/x.ts): models/ may not import pipeline/ (layers: runtime < kernels < engine < structures < models < pipeline < bench < web)",
      "pipeline/x.ts:1 imports '../bench/harness' (bench/harness.ts): pipeline/ may not import bench/ (layers: runtime < kernels < engine < structures < models < pipeline < bench < web)",
      "bench/b.ts:1 imports '../dev/conv/k' (dev/conv/k.ts): nothing in the source tree may import dev/",
    ]);
    expect(importCycles([...fake.keys()], g.edges)).toEqual([
      "import cycle: engine/autograd.ts:1 imports './tensor' -> engine/tensor.ts:1 imports './autograd' -> back to engine/autograd.ts",
    ]);
  });

  it('names the offending pipeline file and import when an application rule is broken', () => {
    const fake = new Map([
      ['pipeline/data/a.ts', "import { e } from '../engine/e';\nimport { f } from '../fusion/f';"],
      ['pipeline/fusion/f.ts', "import type { S } from '../shape/s';\nimport { a } from '../data/a';"],
      ['pipeline/shape/s.ts', "export type S = number;"],
      ['pipeline/engine/e.ts', "import { run } from '../cli/commands/run';\nimport { x } from '../index';"],
      ['pipeline/cli/commands/run.ts', "import { p } from './predict';\nimport { q } from '../args';"],
      ['pipeline/cli/commands/predict.ts', "export const p = 1;"],
      ['pipeline/cli/args.ts', "export const q = 1;"],
      ['pipeline/cli/main.ts', "import * as run from './commands/run';"],
      ['pipeline/index.ts', "export * from './data/a';\nexport * from './cli/args';"],
      ['pipeline/stray.ts', "export const s = 1;"],
    ]);
    const g = importEdges(fake, (p) => fake.has(p));
    expect(pipelineViolations([...fake.keys()], g.edges)).toEqual([
      `pipeline/stray.ts: not in a sub-layer folder of pipeline/ (${PIPELINE_ORDER})`,
      `pipeline/data/a.ts:1 imports '../engine/e' (pipeline/engine/e.ts): pipeline/data/ may not import pipeline/engine/ (sub-layers: ${PIPELINE_ORDER})`,
      `pipeline/data/a.ts:2 imports '../fusion/f' (pipeline/fusion/f.ts): pipeline/data/ may not import pipeline/fusion/ (sub-layers: ${PIPELINE_ORDER})`,
      `pipeline/fusion/f.ts:1 imports '../shape/s' (pipeline/shape/s.ts): pipeline/fusion/ may not import pipeline/shape/ (sub-layers: ${PIPELINE_ORDER})`,
      "pipeline/engine/e.ts:1 imports '../cli/commands/run' (pipeline/cli/commands/run.ts): only pipeline/cli/main.ts imports the commands",
      "pipeline/engine/e.ts:2 imports '../index' (pipeline/index.ts): nothing in pipeline/ imports pipeline/index.ts (the library API for users outside)",
      "pipeline/cli/commands/run.ts:1 imports './predict' (pipeline/cli/commands/predict.ts): a command may not import another command (shared option parsers go in pipeline/cli/args.ts, the rest in the library)",
      "pipeline/index.ts:2 imports './cli/args' (pipeline/cli/args.ts): pipeline/index.ts (the library API) may not import pipeline/cli/",
    ]);
    expect(
      namingViolations(
        ['pipeline/data/trainCsv.ts', 'pipeline/data/train-csv.ts', 'pipeline/post/validate-submission.ts', 'test/pipeline/data/train-csv.test.ts', 'test/pipeline/train/crop.test.ts', 'test/pipeline/Eval/x.test.ts', 'test/pipeline/tmp.ts'],
        new Set(['pipeline/data', 'pipeline/post']),
      ),
    ).toEqual([
      'pipeline/data/trainCsv.ts: file name is not kebab-case',
      'test/pipeline/train/crop.test.ts: test/pipeline/train/ has no source folder pipeline/train/ (test/pipeline/ mirrors pipeline/)',
      'test/pipeline/Eval/: folder name is not kebab-case',
      'test/pipeline/Eval/x.test.ts: test/pipeline/Eval/ has no source folder pipeline/Eval/ (test/pipeline/ mirrors pipeline/)',
    ]);
  });
});
