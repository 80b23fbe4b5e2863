// Whether a process still runs: the owner of a moved-aside output or a temporary folder named by
// its pid, which must be left alone while it does.

/** Whether process `pid` is running (EPERM: it is, under another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
