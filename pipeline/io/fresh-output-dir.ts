// A command whose outputs are a whole folder written over minutes (`cellseg run`: data, folds, a
// trained model, results, a submission) makes them appear together or not at all. An existing
// output folder is moved aside to `.<name>.previous.<pid>` beside it, the command writes a fresh
// folder under the real name (so every path it prints or records is the final one), and then
//   on success: the entries of the previous folder that the command did not write (files of the
//               user's own) are moved back, and the rest of it is deleted;
//   on failure: the new folder is deleted and the previous one renamed back, as it was.
// A previous folder that a killed run left (its process no longer alive) is put back first, and a
// folder a killed run was making where none existed before is removed.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { asWriteError } from '../../runtime/durable-write';
import { UserError } from '../../runtime/errors';
import { isProcessAlive } from './process-alive';

const ASIDE_RE = /^\.(.+)\.previous\.(\d+)$/;
/** With no previous folder, a marker file `.<name>.absent.<pid>` says the folder is being made by
 *  that process, so that a folder a killed run left half-made is removed at the next start. */
const ABSENT_RE = /^\.(.+)\.absent\.(\d+)$/;

/** Puts back the previous folder of a killed run (the partial new one is deleted). Returns whether one was. */
export function restoreInterruptedOutputDir(out: string): boolean {
  const abs = resolve(out);
  const parent = dirname(abs);
  if (!existsSync(parent)) return false;
  for (const name of readdirSync(parent)) {
    const m = ASIDE_RE.exec(name) ?? ABSENT_RE.exec(name);
    if (!m || m[1] !== basename(abs) || Number(m[2]) === process.pid || isProcessAlive(Number(m[2]))) continue;
    try {
      rmSync(abs, { recursive: true, force: true });
      if (ASIDE_RE.test(name)) renameSync(join(parent, name), abs);
      else rmSync(join(parent, name), { force: true });
    } catch (err) {
      throw asWriteError(err, abs);
    }
    return true;
  }
  return false;
}

/**
 * Runs `body` with `out` empty (created), as described above. `previous(p)` gives where a path
 * inside `out` can be read while `body` runs (inputs that are outputs of an earlier run, such as
 * `--weights out/model/model_final.safetensors`); other paths are returned unchanged.
 */
export async function withFreshOutputDir<T>(out: string, body: (previous: (p: string) => string) => Promise<T>, log: (line: string) => void = () => {}): Promise<T> {
  const abs = resolve(out);
  const cwd = process.cwd();
  if (cwd === abs || cwd.startsWith(abs + sep)) throw new UserError(`${out}: the output folder contains the current directory; name a folder below it`);
  if (restoreInterruptedOutputDir(abs)) log(`${out}: put back the previous outputs that an interrupted run had moved aside`);
  const aside = join(dirname(abs), `.${basename(abs)}.previous.${process.pid}`);
  const hadPrevious = existsSync(abs);
  const absent = join(dirname(abs), `.${basename(abs)}.absent.${process.pid}`);
  try {
    if (hadPrevious) renameSync(abs, aside);
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(absent, '');
    }
    mkdirSync(abs, { recursive: true });
  } catch (err) {
    throw asWriteError(err, abs);
  }
  const previous = (p: string): string => {
    const rel = relative(abs, resolve(p));
    return hadPrevious && rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) ? join(aside, rel) : p;
  };
  let result: T;
  try {
    result = await body(previous);
  } catch (err) {
    try {
      rmSync(abs, { recursive: true, force: true });
      if (hadPrevious) renameSync(aside, abs);
      else rmSync(absent, { force: true });
    } catch {
      // the original error is the one to report; the next start puts the previous folder back
    }
    throw err;
  }
  if (hadPrevious) {
    try {
      const written = new Set(readdirSync(abs));
      for (const name of readdirSync(aside)) if (!written.has(name)) renameSync(join(aside, name), join(abs, name));
      rmSync(aside, { recursive: true, force: true });
    } catch (err) {
      throw asWriteError(err, abs);
    }
  } else rmSync(absent, { force: true });
  return result;
}
