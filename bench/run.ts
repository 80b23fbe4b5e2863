// `npm run bench -- <suite...> [--json FILE] [--repeats N]`: runs bench/suites/<name>.ts (found
// by file name), prints a markdown table and optionally writes the rows as JSON.
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { init, rt } from '../runtime/runtime';
import type { BenchRow, BenchSuite } from './types';

const here = dirname(fileURLToPath(import.meta.url));

function availableSuites(): string[] {
  return readdirSync(join(here, 'suites'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

function parseArgs(argv: string[]): { suites: string[]; json?: string; repeats?: number } {
  const suites: string[] = [];
  let json: string | undefined;
  let repeats: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = argv[++i];
    else if (a === '--repeats') repeats = Number(argv[++i]);
    else if (a.startsWith('--json=')) json = a.slice(7);
    else if (a.startsWith('--repeats=')) repeats = Number(a.slice(10));
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else suites.push(a);
  }
  if (repeats !== undefined && !(Number.isInteger(repeats) && repeats > 0)) throw new Error('--repeats needs a positive integer');
  return { suites, json, repeats };
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const known = availableSuites();
  if (args.suites.length === 0) {
    console.log(`usage: npm run bench -- <suite...> [--json FILE] [--repeats N]\nsuites: ${known.join(', ')}`);
    process.exit(1);
  }
  for (const s of args.suites) if (!known.includes(s)) throw new Error(`unknown suite '${s}' (have: ${known.join(', ')})`);
  // Unquantized timestamps (Dawn rounds them to 65.5 µs by default; perf-anchors §6.5).
  await init({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
  const lpThreads = process.env.LP_NUM_THREADS ?? 'unset';
  const a = rt().gpu.adapter;
  console.log(`# cellgpu bench: ${a.description || a.device} (${a.architecture}); LP_NUM_THREADS=${lpThreads}; timestamps ${rt().gpu.features.timestampQuery ? 'on' : 'off'}`);
  const rows: BenchRow[] = [];
  for (const name of args.suites) {
    const mod = (await import(pathToFileURL(join(here, 'suites', `${name}.ts`)).href)) as { run?: BenchSuite };
    if (typeof mod.run !== 'function') throw new Error(`bench/suites/${name}.ts does not export \`run\``);
    const suiteRows = await mod.run({ repeats: args.repeats, log: (m) => console.error(`[${name}] ${m}`) });
    for (const r of suiteRows) rows.push({ ...r, lp_num_threads: lpThreads });
    console.log(`\n## ${name}\n\n${markdown(suiteRows)}`);
  }
  if (args.json) {
    writeFileSync(args.json, JSON.stringify(rows, null, 2) + '\n');
    console.log(`\nwrote ${rows.length} rows to ${args.json}`);
  }
}

main().then(
  () => process.exit(0), // dawn.node keeps the process alive otherwise
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
