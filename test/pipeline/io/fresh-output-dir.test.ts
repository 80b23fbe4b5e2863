// withFreshOutputDir (cellseg run's outputs appear together or not at all): a failed body leaves
// the previous folder exactly as it was; a successful one replaces what it wrote and keeps the
// user's other files; a killed run's moved-aside folder is put back at the next start.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { restoreInterruptedOutputDir, withFreshOutputDir } from '../../../pipeline/io/fresh-output-dir';
import { WriteError } from '../../../runtime/errors';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('fresh-out');
afterAll(tmp.cleanup);
let n = 0;

function previousRun(): string {
  const out = join(tmp.dir, `case${n++}`, 'output');
  mkdirSync(join(out, 'model'), { recursive: true });
  writeFileSync(join(out, 'submission.csv'), 'old submission');
  writeFileSync(join(out, 'model', 'model_final.safetensors'), 'old weights');
  writeFileSync(join(out, 'notes.txt'), 'the user\'s own file');
  return out;
}
const tree = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

describe('withFreshOutputDir', () => {
  it('a failure leaves the previous outputs as they were, nothing of the new run, nothing beside', async () => {
    const out = previousRun();
    const before = tree(out);
    const err = await withFreshOutputDir(out, async (previous) => {
      expect(readdirSync(out)).toEqual([]); // a fresh folder under the real name
      expect(readFileSync(previous(join(out, 'model', 'model_final.safetensors')), 'utf8')).toBe('old weights');
      expect(previous('/elsewhere/w.safetensors')).toBe('/elsewhere/w.safetensors');
      writeFileSync(join(out, 'submission.csv'), 'half');
      throw new WriteError(join(out, 'test_results.json'), 'no space left on device (ENOSPC)');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/test_results\.json: could not write: no space left on device/);
    expect(tree(out)).toEqual(before);
    expect(readFileSync(join(out, 'submission.csv'), 'utf8')).toBe('old submission');
    expect(readdirSync(join(out, '..'))).toEqual(['output']);
  });

  it('a success replaces what it wrote and keeps the other entries of the previous folder', async () => {
    const out = previousRun();
    await withFreshOutputDir(out, async () => {
      mkdirSync(join(out, 'model'));
      writeFileSync(join(out, 'model', 'model_final.safetensors'), 'new weights');
      writeFileSync(join(out, 'submission.csv'), 'new submission');
    });
    expect(tree(out)).toEqual(['model', 'model/model_final.safetensors', 'notes.txt', 'submission.csv']);
    expect(readFileSync(join(out, 'submission.csv'), 'utf8')).toBe('new submission');
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('the user\'s own file');
    expect(readdirSync(join(out, '..'))).toEqual(['output']);
  });

  it('a run killed meanwhile: its moved-aside folder is put back at the next start', async () => {
    const out = previousRun();
    const before = tree(out);
    // what a run with pid 2^22 + 1 (not alive) leaves when killed: the previous folder aside, a partial new one
    renameSync(out, join(out, '..', `.output.previous.${2 ** 22 + 1}`));
    mkdirSync(out);
    writeFileSync(join(out, 'submission.csv'), 'partial');
    expect(restoreInterruptedOutputDir(out)).toBe(true);
    expect(tree(out)).toEqual(before);
    expect(readdirSync(join(out, '..'))).toEqual(['output']);
    expect(restoreInterruptedOutputDir(out)).toBe(false);
  });

  it('with no previous folder: a failure or a killed run leaves nothing, and a success leaves no marker', async () => {
    const parent = join(tmp.dir, `case${n++}`);
    const out = join(parent, 'output');
    await expect(withFreshOutputDir(out, async () => {
      writeFileSync(join(out, 'half.csv'), 'half');
      throw new Error('failed');
    })).rejects.toThrow('failed');
    expect(readdirSync(parent)).toEqual([]);
    // what a run with pid 2^22 + 1 (not alive) leaves when killed while making the folder
    mkdirSync(out);
    writeFileSync(join(out, 'submission.csv'), 'partial');
    writeFileSync(join(parent, `.output.absent.${2 ** 22 + 1}`), '');
    expect(restoreInterruptedOutputDir(out)).toBe(true);
    expect(readdirSync(parent)).toEqual([]);
    await withFreshOutputDir(out, async () => {
      expect(readdirSync(parent).sort()).toEqual([`.output.absent.${process.pid}`, 'output']);
      writeFileSync(join(out, 'submission.csv'), 'new');
    });
    expect(readdirSync(parent)).toEqual(['output']);
  });

  it('refuses an output folder that contains the current directory', async () => {
    await expect(withFreshOutputDir(process.cwd(), async () => {})).rejects.toThrow(/contains the current directory/);
    expect(existsSync(process.cwd())).toBe(true);
  });
});
