// Output locations are checked before a command works: never a mkdir under /proc, a file in the way
// named, read-only said as such.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputDir, checkOutputFile, type OutputFs } from '../../../pipeline/io/output-path';
import { makeTempDir } from '../tmp';

const tmp = makeTempDir('outpath');
afterAll(tmp.cleanup);
const erroring = (code: string): OutputFs => ({
  access: () => {
    throw Object.assign(new Error(code), { code });
  },
  fsType: () => 0xef53, // ext4
});

describe('checkOutputDir / checkOutputFile', () => {
  it('accepts an existing or creatable folder and creates nothing', () => {
    checkOutputDir(tmp.dir);
    checkOutputDir(join(tmp.dir, 'a', 'b', 'c'));
    checkOutputFile(join(tmp.dir, 'x', 'y.json'));
    expect(() => checkOutputDir(join(tmp.dir, 'a'))).not.toThrow();
    expect(existsSync(join(tmp.dir, 'a'))).toBe(false);
  });

  it('names the file that is in the way', () => {
    writeFileSync(join(tmp.dir, 'file'), 'x');
    expect(() => checkOutputFile(join(tmp.dir, 'file', 'deeper', 'out.json'), '--json')).toThrow(new RegExp(`--json .*out\\.json: ${tmp.dir}/file is not a directory`));
    expect(() => checkOutputFile('/etc/passwd/x.json', '--json')).toThrow(/\/etc\/passwd is not a directory/);
    mkdirSync(join(tmp.dir, 'isdir'));
    expect(() => checkOutputFile(join(tmp.dir, 'isdir'), '--out')).toThrow(/is a directory, expected a file name/);
  });

  it('refuses pseudo file systems by path, without a mkdir', () => {
    expect(() => checkOutputDir('/proc/self/task/x/y')).toThrow(/\/proc is on a pseudo file system/);
    expect(() => checkOutputDir('/sys/x')).toThrow(/\/sys is on a pseudo file system/);
    expect(() => checkOutputFile('/dev/shm-not/x.json')).toThrow(/\/dev is a pseudo file system/);
    const proc: OutputFs = { access: () => {}, fsType: () => 0x9fa0 };
    expect(() => checkOutputDir(tmp.dir, '--out', proc)).toThrow(/pseudo file system \(proc\)/);
  });

  it('says read-only for a read-only or unwritable folder', () => {
    expect(() => checkOutputDir(join(tmp.dir, 'new'), 'OUTPUT_DIR', erroring('EROFS'))).toThrow(/OUTPUT_DIR .*new: cannot write to .* it is on a read-only file system/);
    expect(() => checkOutputDir(tmp.dir, 'OUTPUT_DIR', erroring('EACCES'))).toThrow(/permission denied \(it is read-only for this user\)/);
    if (process.getuid?.() !== 0) {
      const ro = join(tmp.dir, 'ro');
      mkdirSync(ro);
      chmodSync(ro, 0o555);
      expect(() => checkOutputDir(join(ro, 'out'))).toThrow(/read-only/);
      chmodSync(ro, 0o755);
    }
  });
});
