// `npm run web`: bundle web/main.ts for the browser with esbuild and serve the page on
// http://127.0.0.1:<port>. The bundle must not contain Node: any Node built-in (node:fs, path,
// zlib, ...) left in the output fails the build, naming the files that import it. Node-only
// packages that library files import at their top (pngjs, cli-progress) are marked free of side
// effects, so they vanish when nothing the page runs uses them and fail the build when something
// does. Three Node modules have browser implementations, swapped in here as a package.json "browser"
// field would: npm `webgpu` (Dawn) -> web/shims/webgpu.ts (a page takes navigator.gpu), and
// pipeline/io/png.ts (PNG files via pngjs + fs) -> web/shims/png.ts and pipeline/io/image.ts (image
// files via fs) -> web/shims/image.ts (a page decodes images with createImageBitmap; the file
// readers there throw).
// Served besides the bundle: web/index.html, web/style.css, the demo model (models/zoo/) and the
// configs (configs/), as static files.
//   node web/build.mjs [--port 8080] [--host 127.0.0.1] [--no-minify] [--build-only]
import * as esbuild from 'esbuild';
import { createServer } from 'node:http';
import { builtinModules } from 'node:module';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const OUTDIR = join(ROOT, 'web', 'dist');
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const isBuiltin = (p) => p.startsWith('node:') || BUILTINS.has(p) || BUILTINS.has(p.split('/')[0]);
/** Node-only npm packages imported at the top of library files whose browser-used parts do not
 *  need them: dropped unless used. */
const SIDE_EFFECT_FREE = new Set(['pngjs', 'cli-progress']);

const nodeFreePlugin = {
  name: 'cellgpu-node-free',
  setup(build) {
    build.onResolve({ filter: /^webgpu$/ }, () => ({ path: join(ROOT, 'web', 'shims', 'webgpu.ts') }));
    build.onResolve({ filter: /(^|\/)png$/ }, (args) => {
      if (resolve(args.resolveDir, args.path) === join(ROOT, 'pipeline', 'io', 'png')) return { path: join(ROOT, 'web', 'shims', 'png.ts') };
      return undefined;
    });
    build.onResolve({ filter: /(^|\/)image$/ }, (args) => {
      if (resolve(args.resolveDir, args.path) === join(ROOT, 'pipeline', 'io', 'image')) return { path: join(ROOT, 'web', 'shims', 'image.ts') };
      return undefined;
    });
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.cellgpuInner) return undefined;
      if (isBuiltin(args.path)) return { path: args.path, external: true, sideEffects: false };
      if (SIDE_EFFECT_FREE.has(args.path)) {
        const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { cellgpuInner: true } });
        if (r.errors.length) return { errors: r.errors };
        return { path: r.path, sideEffects: false };
      }
      return undefined;
    });
  },
};

/** Node built-ins the bundle still imports, each with the source files that import it. */
function nodeImportsLeft(metafile) {
  const left = new Set();
  for (const out of Object.values(metafile.outputs)) for (const imp of out.imports) if (imp.external && isBuiltin(imp.path)) left.add(imp.path);
  return [...left].map((b) => {
    const by = Object.entries(metafile.inputs).filter(([, i]) => i.imports.some((x) => x.path === b)).map(([f]) => f);
    return `${b} (imported by ${by.join(', ') || '?'})`;
  });
}

/** Build web/main.ts (or `entry`) into `outdir` (main.js + main.js.map). Throws when Node
 *  slipped in. */
export async function buildWeb({ outdir = OUTDIR, minify = true, entry = join(ROOT, 'web', 'main.ts') } = {}) {
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify,
    sourcemap: true,
    metafile: true,
    outfile: join(outdir, 'main.js'),
    plugins: [nodeFreePlugin],
    logLevel: 'silent',
    legalComments: 'none',
  });
  const left = nodeImportsLeft(result.metafile);
  if (left.length) throw new Error(`web build: the browser bundle would import Node built-ins:\n  ${left.join('\n  ')}\nMove the Node-only code behind an interface (see web/README.md).`);
  const bytes = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith('main.js'))[1].bytes;
  return { outdir, bytes, warnings: result.warnings };
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json', '.css': 'text/css', '.json': 'application/json', '.yaml': 'text/yaml; charset=utf-8', '.png': 'image/png', '.safetensors': 'application/octet-stream' };

/** URL path -> file: the bundle, the page, and the static model + config folders; nothing else. */
function fileOf(urlPath, outdir) {
  const p = decodeURIComponent(urlPath.split('?')[0]);
  if (p === '/' || p === '/index.html') return join(ROOT, 'web', 'index.html');
  if (p === '/style.css') return join(ROOT, 'web', 'style.css');
  if (p === '/main.js' || p === '/main.js.map') return join(outdir, p.slice(1));
  for (const dir of ['models/zoo/', 'configs/']) {
    if (p.startsWith(`/${dir}`)) {
      const f = normalize(join(ROOT, p));
      if (f.startsWith(join(ROOT, dir)) && !f.includes(`..${sep}`)) return f;
    }
  }
  return undefined;
}

/** Serve the built page on host:port (port 0: a free one). Resolves when listening. */
export async function serveWeb({ port = 8080, host = '127.0.0.1', outdir = OUTDIR } = {}) {
  const server = createServer(async (req, res) => {
    const f = fileOf(req.url ?? '/', outdir);
    try {
      if (!f || !(await stat(f)).isFile()) throw new Error('not found');
      const body = await readFile(f);
      res.writeHead(200, { 'content-type': TYPES[extname(f)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`not found: ${req.url}`);
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const addr = server.address();
  return { url: `http://${host}:${addr.port}/`, close: () => new Promise((ok) => server.close(() => ok())) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  try {
    const t0 = performance.now();
    const { bytes } = await buildWeb({ minify: !args.includes('--no-minify') });
    console.log(`web: bundled web/main.ts -> web/dist/main.js, ${(bytes / 1024).toFixed(0)} KiB (without weights), ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (!args.includes('--build-only')) {
      const { url } = await serveWeb({ port: Number(opt('--port', '8080')), host: opt('--host', '127.0.0.1') });
      console.log(`web: serving ${url}  (Ctrl-C to stop)`);
    }
  } catch (err) {
    console.error(err.message ?? err);
    process.exit(1);
  }
}
