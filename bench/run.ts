// `npm run bench -- <suite...> [--repeats N] [--out PATH | --no-save] [--json FILE]`: runs
// bench/suites/<name>.ts (found by file name), prints a markdown table per suite and saves one
// result record per suite (date, adapter, host, command line, git revision, rows) as JSON, by
// default into bench/results/. `--json FILE` also writes every row of the run as one flat array
// (the older format). Record format and how to compare two revisions: bench/README.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { init, rt } from '../runtime/runtime';
import { isSoftwareAdapter } from '../runtime/adapter';
import type { BenchRow, BenchSuite } from './types';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
/** Where records go unless --out says otherwise. */
export const RESULTS_DIR = join(here, 'results');

/** One suite's results with what is needed to reproduce and compare them (bench/README.md). */
export interface BenchRecord {
  suite: string;
  /** ISO time of the suite's start. */
  date: string;
  /** What produced the record: 'npm run bench', 'bench/suites/model.ts', or 'transcribed from bench notes'. */
  source: string;
  /** `git rev-parse HEAD` of the checkout, null outside a git checkout. */
  git_rev: string | null;
  /** Uncommitted changes to tracked files when it ran. */
  git_dirty?: boolean;
  /** The command line, with the environment knobs that were set (BENCH_*, CELLGPU_*, LP_*...). */
  command: string;
  adapter: Record<string, unknown>;
  host: Record<string, unknown>;
  rows: BenchRow[];
}

function availableSuites(): string[] {
  return readdirSync(join(here, 'suites'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

interface Args {
  suites: string[];
  json?: string;
  out?: string;
  save: boolean;
  repeats?: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { suites: [], save: true };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--json') a.json = argv[++i];
    else if (x === '--out') a.out = argv[++i];
    else if (x === '--no-save') a.save = false;
    else if (x === '--repeats') a.repeats = Number(argv[++i]);
    else if (x.startsWith('--json=')) a.json = x.slice(7);
    else if (x.startsWith('--out=')) a.out = x.slice(6);
    else if (x.startsWith('--repeats=')) a.repeats = Number(x.slice(10));
    else if (x.startsWith('-')) throw new Error(`unknown option ${x}`);
    else a.suites.push(x);
  }
  if (a.repeats !== undefined && !(Number.isInteger(a.repeats) && a.repeats > 0)) throw new Error('--repeats needs a positive integer');
  if (a.out !== undefined && !a.out) throw new Error('--out needs a path');
  if (a.out?.endsWith('.json') && a.suites.length > 1) throw new Error('--out FILE.json takes one suite (one record per suite); give a folder for several');
  return a;
}

const fmt = (v: unknown) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3)) : v === undefined ? '' : String(v));

function markdown(rows: BenchRow[]): string {
  const fixed = ['suite', 'case', 'ms', 'gflops', 'gbps', 'peer', 'peer_ms', 'ratio'];
  const extras = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => !fixed.includes(k) && k !== 'lp_num_threads');
  const cols = [...fixed.filter((k) => rows.some((r) => r[k] !== undefined)), ...extras];
  const lines = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${cols.map((c) => fmt(r[c])).join(' | ')} |`);
  return lines.join('\n');
}

// ---- result records ----------------------------------------------------------------------------

const KNOBS = /^(BENCH_|CELLGPU_|LP_|MESA_|GALLIVM_)/;

function shellQuote(s: string): string {
  return /^[\w./:=,@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command line as it can be pasted: environment knobs that were set, then `base args`. */
export function commandLine(base: string, args: readonly string[]): string {
  const env = Object.entries(process.env)
    .filter(([k, v]) => KNOBS.test(k) && v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${shellQuote(v!)}`);
  return [...env, base, ...args.map(shellQuote)].join(' ');
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

/** Adapter and host facts for a record (call after init()). */
function environment(): { adapter: Record<string, unknown>; host: Record<string, unknown> } {
  const g = rt().gpu;
  const c = cpus();
  return {
    adapter: { ...g.adapter, software: isSoftwareAdapter(), runtime: g.runtime, timestamps: g.features.timestampQuery, subgroups: g.features.subgroups, f16: g.features.f16 },
    host: {
      platform: `${platform()} ${release()}`,
      cpus: c.length,
      cpu: c[0]?.model,
      memory_gib: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      lp_num_threads: process.env.LP_NUM_THREADS ?? 'unset',
    },
  };
}

/** A record of `rows`; `startLoad` is the 1-minute load average when the suite started. */
export function makeRecord(suite: string, source: string, command: string, started: Date, startLoad: number, rows: BenchRow[]): BenchRecord {
  const rev = git(['rev-parse', 'HEAD']);
  const dirty = rev === null ? null : git(['status', '--porcelain', '--untracked-files=no']);
  const env = environment();
  return {
    suite,
    date: started.toISOString(),
    source,
    git_rev: rev,
    ...(dirty !== null ? { git_dirty: dirty.length > 0 } : {}),
    command,
    adapter: env.adapter,
    host: { ...env.host, load1_start: Math.round(startLoad * 100) / 100, load1_end: Math.round(loadavg()[0]! * 100) / 100 },
    rows,
  };
}

/** JSON with the header indented and one row per line (readable, and diffs stay row by row). */
export function formatRecord(rec: BenchRecord): string {
  const { rows, ...head } = rec;
  const top = JSON.stringify(head, null, 2);
  return `${top.slice(0, -2)},\n  "rows": [\n${rows.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]\n}\n`;
}

/** Where a record goes: `out` as a file when it ends in .json, else `<out>/<date>-<adapter>-<suite>.json`. */
export function recordPath(rec: BenchRecord, out: string = RESULTS_DIR): string {
  if (out.endsWith('.json')) return resolve(out);
  const a = rec.adapter;
  const name = a.software ? 'lavapipe' : String(a.description || a.device || a.vendor || 'gpu');
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'gpu';
  const stamp = rec.date.slice(0, 19).replace(/:/g, '').replace('T', '-');
  return resolve(out, `${stamp}-${slug}-${rec.suite}.json`);
}

export function saveRecord(rec: BenchRecord, out?: string): string {
  const file = recordPath(rec, out);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, formatRecord(rec));
  return file;
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const known = availableSuites();
  if (args.suites.length === 0) {
    console.log(`usage: npm run bench -- <suite...> [--repeats N] [--out PATH | --no-save] [--json FILE]\nsuites: ${known.join(', ')}`);
    process.exit(1);
  }
  for (const s of args.suites) if (!known.includes(s)) throw new Error(`unknown suite '${s}' (have: ${known.join(', ')})`);
  // Unquantized timestamps: Dawn rounds timestamp queries to 65.5 µs by default.
  await init({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
  const lpThreads = process.env.LP_NUM_THREADS ?? 'unset';
  const a = rt().gpu.adapter;
  console.log(`# cellgpu bench: ${a.description || a.device} (${a.architecture}); LP_NUM_THREADS=${lpThreads}; timestamps ${rt().gpu.features.timestampQuery ? 'on' : 'off'}`);
  const rows: BenchRow[] = [];
  for (const name of args.suites) {
    const mod = (await import(pathToFileURL(join(here, 'suites', `${name}.ts`)).href)) as { run?: BenchSuite };
    if (typeof mod.run !== 'function') throw new Error(`bench/suites/${name}.ts does not export \`run\``);
    const started = new Date();
    const startLoad = loadavg()[0]!;
    const suiteRows = await mod.run({ repeats: args.repeats, log: (m) => console.error(`[${name}] ${m}`) });
    for (const r of suiteRows) rows.push({ ...r, lp_num_threads: lpThreads });
    console.log(`\n## ${name}\n\n${markdown(suiteRows)}`);
    if (args.save) {
      const file = saveRecord(makeRecord(name, 'npm run bench', commandLine('npm run bench --', [name, ...argv.filter((x) => !args.suites.includes(x))]), started, startLoad, suiteRows), args.out);
      console.log(`\nsaved ${suiteRows.length} rows to ${file}`);
    }
  }
  if (args.json) {
    writeFileSync(args.json, JSON.stringify(rows, null, 2) + '\n');
    console.log(`\nwrote ${rows.length} rows to ${args.json}`);
  }
}

/** Whether this file is the entry point (`npm run bench`, `npx tsx bench/run.ts`), not an import. */
function isMain(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main().then(
    () => process.exit(0), // dawn.node keeps the process alive otherwise
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}
