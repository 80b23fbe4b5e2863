// Preloaded into a spawned `cellseg` (node --import) by the CLI reliability tests, to make the
// durable writer (runtime/durable-write.ts) misbehave at a chosen point. Configured by env:
//   CELLSEG_TEST_STALL_RENAME=RE    the rename of a target whose base name matches RE first writes
//   CELLSEG_TEST_STALL_MARKER=FILE  FILE, then blocks the process forever (a test then kills it
//                                   with SIGKILL: a crash in the middle of a checkpoint write)
//   CELLSEG_TEST_FAIL_WRITE=RE      writes to the temporary file of a target matching RE fail with
//   CELLSEG_TEST_FAIL_AFTER=N       ENOSPC once N bytes of it are written (default 0)
//   CELLSEG_TEST_FAIL_NTH=K         only the K-th matching target (1-based; default every one)
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { nodeDurableFs, setDurableFs, type DurableFs } from '../../../runtime/durable-write';

const env = process.env;
const over: Partial<DurableFs> = {};

if (env.CELLSEG_TEST_STALL_RENAME) {
  const re = new RegExp(env.CELLSEG_TEST_STALL_RENAME);
  over.renameSync = (from, to) => {
    if (re.test(basename(to))) {
      if (env.CELLSEG_TEST_STALL_MARKER) writeFileSync(env.CELLSEG_TEST_STALL_MARKER, `${from}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until killed
    }
    nodeDurableFs.renameSync(from, to);
  };
}

if (env.CELLSEG_TEST_FAIL_WRITE) {
  const re = new RegExp(env.CELLSEG_TEST_FAIL_WRITE);
  const after = Number(env.CELLSEG_TEST_FAIL_AFTER ?? 0);
  const nth = Number(env.CELLSEG_TEST_FAIL_NTH ?? 0);
  // temp files are `.<target base name>.<pid>.<hex>.tmp`; a descriptor is doomed from its open on
  const doomed = new Set<number>();
  let seen = 0;
  over.openSync = (path, flags, mode) => {
    const fd = nodeDurableFs.openSync(path, flags, mode);
    const m = /^\.(.+)\.\d+\.[0-9a-f]{8}\.tmp$/.exec(basename(path));
    if (m && re.test(m[1]!) && (nth === 0 || ++seen === nth)) doomed.add(fd);
    return fd;
  };
  const fail = (fd: number, length: number, position: number): number => {
    if (!doomed.has(fd) || position + length <= after) return -1;
    if (position >= after) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    return after - position; // a short write up to the limit; the next one fails
  };
  over.writeSync = (fd, buf, off, len, pos) => {
    const n = fail(fd, len, pos);
    return nodeDurableFs.writeSync(fd, buf, off, n < 0 ? len : n, pos);
  };
  over.write = async (fd, buf, off, len, pos) => {
    const n = fail(fd, len, pos);
    return nodeDurableFs.write(fd, buf, off, n < 0 ? len : n, pos);
  };
  over.closeSync = (fd) => {
    doomed.delete(fd);
    nodeDurableFs.closeSync(fd);
  };
}

if (Object.keys(over).length) setDurableFs(over);
