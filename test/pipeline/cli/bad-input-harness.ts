// Replays a corpus of bad inputs through `cellseg` (spawned as node with tsx's loader): each case
// must exit with the expected code within HANG_MS, print exactly one line `cellseg: ...` on stderr
// (no stack trace, no raw control bytes, no native log lines) and leave its output folder empty.
// A failing case is counted under what went wrong: hang, crash (a signal or the internal-error
// exit 70), stack trace, silent corruption (exit 0: the bad input was accepted), leftovers (files
// in the output folder), or message (wrong exit code, line or wording).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../tmp';

export interface Case {
  cls: string;
  name: string;
  /** Arguments; "$O" is replaced by the case's own (empty) output folder, "$G:key" by a generated file. */
  args: string[];
  code: number;
  err: RegExp;
  /** Text stderr must not contain. */
  not?: RegExp;
}

export const ROOT = new URL('../../../', import.meta.url).pathname;
/** A case that runs longer than this is killed and counted as a hang. */
const HANG_MS = 120_000;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  hung: boolean;
  err: string;
  left: string[];
}

export const PROBLEM_KINDS = ['hang', 'crash', 'stack trace', 'silent corruption', 'leftovers', 'message'] as const;
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

function cellseg(args: string[], cwd: string): Promise<Omit<Outcome, 'left'>> {
  return new Promise((resolve) => {
    // node with tsx's loader directly: the tsx launcher would start a second node per case.
    const p = spawn(process.execPath, ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'pipeline/cli/main.ts'), ...args], { cwd });
    let err = '';
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      p.kill('SIGKILL');
    }, HANG_MS);
    p.stdout.resume();
    p.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, hung, err });
    });
  });
}

/** What is wrong with one case's outcome, by kind (empty: nothing). */
export function problemsOf(c: Case, r: Outcome): { kind: ProblemKind; what: string }[] {
  const out: { kind: ProblemKind; what: string }[] = [];
  const lines = r.err.split('\n').filter((l) => l.trim() !== '');
  if (r.hung) out.push({ kind: 'hang', what: `still running after ${HANG_MS / 1000} s` });
  else if (r.signal || r.code === 70) out.push({ kind: 'crash', what: r.signal ? `died of ${r.signal}` : 'exit 70 (internal error)' });
  else if (r.code === 0) out.push({ kind: 'silent corruption', what: 'exit 0: the bad input was accepted' });
  if (/^\s+at /m.test(r.err)) out.push({ kind: 'stack trace', what: 'stack trace on stderr' });
  if (r.left.length > 0) out.push({ kind: 'leftovers', what: `left in the output folder: ${r.left.join(', ')}` });
  const msg: string[] = [];
  if (!r.hung && r.code !== c.code && !(r.signal || r.code === 70 || r.code === 0)) msg.push(`exit ${r.code}, expected ${c.code}`);
  if (lines.length !== 1) msg.push(`${lines.length} stderr lines`);
  if (!lines[0]?.startsWith('cellseg: ')) msg.push('no "cellseg: " prefix');
  if (!c.err.test(r.err)) msg.push(`message does not match ${c.err}`);
  if (c.not?.test(r.err)) msg.push(`message matches ${c.not}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f]/.test(r.err)) msg.push('raw control bytes');
  if (msg.length) out.push({ kind: 'message', what: msg.join('; ') });
  return out;
}

/**
 * Defines one test per class of `cases` that replays them (two at a time: two cores) and expects
 * no problem; logs each class's counts by problem kind. `generate` makes large inputs at test time
 * (`$G:key` in args).
 */
export function replayCorpus(tag: string, cases: Case[], generate?: (dir: string) => Record<string, string>): void {
  const tmp = makeTempDir(tag);
  afterAll(tmp.cleanup);
  let G: Record<string, string> = {};
  beforeAll(() => {
    if (generate) G = generate(join(tmp.dir, 'generated'));
  });

  const runAll = async (list: Case[]): Promise<Map<Case, Outcome>> => {
    const results = new Map<Case, Outcome>();
    let next = 0;
    const worker = async () => {
      while (next < list.length) {
        const c = list[next++]!;
        const o = join(tmp.dir, 'out', `${cases.indexOf(c)}`);
        mkdirSync(o, { recursive: true });
        const args = c.args.map((a) => (a.startsWith('$G:') ? G[a.slice(3)]! : a.replace('$O', o)));
        const r = await cellseg(args, tmp.dir);
        results.set(c, { ...r, left: readdirSync(o) });
      }
    };
    await Promise.all([worker(), worker()]);
    return results;
  };

  describe(`${tag}: bad inputs through the CLI`, () => {
    for (const cls of [...new Set(cases.map((c) => c.cls))]) {
      const list = cases.filter((c) => c.cls === cls);
      it(`${cls}: ${list.length} files, one line each, right exit code, nothing written`, async () => {
        const results = await runAll(list);
        const counts = Object.fromEntries(PROBLEM_KINDS.map((k) => [k, 0])) as Record<ProblemKind, number>;
        const failures: string[] = [];
        for (const c of list) {
          const r = results.get(c)!;
          const problems = problemsOf(c, r);
          for (const p of problems) counts[p.kind]++;
          if (problems.length) failures.push(`${c.name}: ${problems.map((p) => `[${p.kind}] ${p.what}`).join('; ')}\n    stderr: ${r.err.slice(0, 400).replace(/\n/g, '\n            ')}`);
        }
        console.log(`${tag} ${cls}: ${list.length} cases; ${PROBLEM_KINDS.map((k) => `${k} ${counts[k]}`).join(', ')}`);
        expect(failures.join('\n'), failures.join('\n')).toBe('');
      }, 900_000);
    }
  });
}
