// Output locations checked before a command does any work: the folder an output goes to must
// exist or be creatable (its nearest existing ancestor a writable directory), and must not be on a
// pseudo file system (/proc, /sys, /dev, cgroup, debugfs, ...: a recursive mkdir under /proc
// spins forever, so these are refused by path and file-system type before any mkdir). Nothing is
// created here; the durable writer (io/atomic.ts) creates folders when it writes. Every problem is
// one UserError naming the path: "/etc/passwd is not a directory", "... is read-only".
import { accessSync, constants, realpathSync, statSync, statfsSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { UserError } from '../../runtime/errors';

const PSEUDO_PREFIXES = ['/proc', '/sys', '/dev'];

/** statfs f_type of pseudo file systems (linux/magic.h). */
const PSEUDO_FS_TYPES = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x1cd1, 'devpts'],
  [0xcafe4a11, 'bpf'],
  [0x6e736673, 'nsfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x65735546, 'fusectl'],
  [0x67596969, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x50495045, 'pipefs'],
]);

/** File-system operations, replaceable in tests (a read-only mount cannot be made as a user). */
export interface OutputFs {
  access(path: string): void;
  fsType(path: string): number | undefined;
}

const nodeOutputFs: OutputFs = {
  access: (p) => accessSync(p, constants.W_OK | constants.X_OK),
  fsType: (p) => {
    try {
      return statfsSync(p).type;
    } catch {
      return undefined;
    }
  },
};

function pseudoPrefix(abs: string): string | undefined {
  return PSEUDO_PREFIXES.find((p) => abs === p || abs.startsWith(p + sep));
}

/**
 * Checks that outputs can be written into `dir` (created if missing when written). `what` names
 * the option in messages, e.g. "--out-dir".
 */
export function checkOutputDir(dir: string, what = 'output folder', fs: OutputFs = nodeOutputFs, shown = dir): void {
  const abs = resolve(dir);
  const refusePseudo = (p: string, kind: string) => {
    throw new UserError(`${what} ${shown}: ${p} is on a pseudo file system (${kind}), not a place for outputs`);
  };
  const pre = pseudoPrefix(abs);
  if (pre) refusePseudo(pre, pre.slice(1));
  // The nearest existing ancestor (or dir itself).
  let existing = abs;
  for (;;) {
    let st;
    try {
      st = statSync(existing);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new UserError(`${what} ${shown}: cannot use ${existing} (${code ?? (err as Error).message})`);
      const up = dirname(existing);
      if (up === existing) throw new UserError(`${what} ${shown}: no existing folder above it`);
      existing = up;
      continue;
    }
    if (!st.isDirectory()) throw new UserError(`${what} ${shown}: ${existing} is not a directory`);
    break;
  }
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // keep the resolved path
  }
  const realPre = pseudoPrefix(real);
  if (realPre) refusePseudo(real, realPre.slice(1));
  const type = fs.fsType(real);
  const kind = type === undefined ? undefined : PSEUDO_FS_TYPES.get(type);
  if (kind) refusePseudo(real, kind);
  try {
    fs.access(existing);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = existing === abs ? shown : `${existing} (where ${shown} would be created)`;
    if (code === 'EROFS') throw new UserError(`${what} ${shown}: cannot write to ${where}: it is on a read-only file system`);
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`${what} ${shown}: cannot write to ${where}: permission denied (it is read-only for this user)`);
    throw new UserError(`${what} ${shown}: cannot write to ${where} (${code ?? (err as Error).message})`);
  }
}

/** Checks that the file `file` can be written: not an existing directory, its folder writable. */
export function checkOutputFile(file: string, what = 'output', fs: OutputFs = nodeOutputFs): void {
  const abs = resolve(file);
  const pre = pseudoPrefix(abs);
  if (pre) throw new UserError(`${what} ${file}: ${pre} is a pseudo file system, not a place for outputs`);
  try {
    if (statSync(abs).isDirectory()) throw new UserError(`${what} ${file}: is a directory, expected a file name`);
  } catch (err) {
    if (err instanceof UserError) throw err;
  }
  checkOutputDir(dirname(abs), what, fs, file);
}

/** checkOutputFile for each given (undefined entries skipped), before a command starts its work. */
export function checkOutputs(files: Record<string, string | undefined>): void {
  for (const [what, f] of Object.entries(files)) if (f !== undefined) checkOutputFile(f, what);
}
