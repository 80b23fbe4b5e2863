// Dawn (the native WebGPU of npm `webgpu`) writes its log straight to file descriptor 2, where
// JavaScript cannot intercept it: "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially
// reduced from 1000000 to 16 ..." on every lavapipe start, and loader noise ("Warning: vkCreateInstance:
// Found no drivers!", "    at CheckVkSuccessImpl (.../VulkanError.cpp:106)") when there is no
// adapter. No Dawn flag or environment variable silences them. So a command that uses the GPU runs
// as a child process whose stderr is piped through `NativeNoiseFilter`, which drops those lines
// and passes everything else through unchanged (partial lines, such as progress bars, at once).
// `--verbose` shows them (no child process).
import { spawn } from 'node:child_process';

/** Commands that create the WebGPU device. */
export const GPU_COMMANDS = new Set(['doctor', 'train', 'predict', 'run', 'model-summary']);

/** Set in the child: stderr is already filtered; CELLSEG_STDERR_TTY=1: the parent's is a TTY. */
export const FILTERED_ENV = 'CELLSEG_STDERR_FILTERED';
export const TTY_ENV = 'CELLSEG_STDERR_TTY';

const NOISE: readonly RegExp[] = [
  /^Warning: /, // dawn::WarningLog (our own messages say "warning:" / "note:")
  /^\s+at \S+ \(.*\.(cpp|cc|h|mm):\d+\)\s*$/, // the native source location Dawn appends
  /^(ERROR|WARNING|INFO|DEBUG): \[Loader Message\]/, // Vulkan loader
  /^MESA-LOADER: /,
];

export function isNativeNoise(line: string): boolean {
  return NOISE.some((re) => re.test(line));
}

/** Whether this process should re-run itself with its stderr filtered. */
export function wantsFilteredChild(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[FILTERED_ENV] === '1') return false;
  const args = argv.slice(2);
  if (args.includes('--verbose')) return false;
  const command = args.find((a) => !a.startsWith('-'));
  return command !== undefined && GPU_COMMANDS.has(command);
}

/** A line filter over a text stream: complete lines that are native noise are dropped (and one
 *  blank line right after them); a partial line is passed on at once unless it could still become
 *  noise. */
export class NativeNoiseFilter {
  private pending = '';
  private dropped = false;
  constructor(private readonly write: (s: string) => void) {}

  push(text: string): void {
    this.pending += text;
    let start = 0;
    for (;;) {
      const nl = this.pending.indexOf('\n', start);
      if (nl < 0) break;
      this.line(this.pending.slice(start, nl), '\n');
      start = nl + 1;
    }
    this.pending = this.pending.slice(start);
    if (this.pending !== '' && (this.pendingWritten || !this.couldBeNoise(this.pending))) {
      this.dropped = false;
      this.write(this.pending);
      this.pendingWritten = true;
      this.pending = '';
    }
  }

  end(): void {
    if (this.pending !== '') this.line(this.pending, '');
    this.pending = '';
  }

  /** Part of the current line went out already: the rest follows whatever it is. */
  private pendingWritten = false;

  private line(line: string, eol: string): void {
    if (this.pendingWritten) {
      this.pendingWritten = false;
      this.write(line + eol);
      return;
    }
    const bare = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (isNativeNoise(bare)) {
      this.dropped = true;
      return;
    }
    if (bare === '' && this.dropped) {
      this.dropped = false;
      return;
    }
    this.dropped = false;
    this.write(line + eol);
  }

  private couldBeNoise(partial: string): boolean {
    if (/^\s*$/.test(partial)) return true;
    const prefixes = ['Warning: ', 'ERROR: [', 'WARNING: [', 'INFO: [', 'DEBUG: [', 'MESA-LOADER: '];
    if (prefixes.some((p) => p.startsWith(partial) || partial.startsWith(p))) return true;
    return /^\s+(a|at|at \S*( \(.*)?)?$/.test(partial);
  }
}

/** Runs this same command line as a child with stderr filtered; resolves to its exit code. */
export function runFilteredChild(): Promise<number> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, [FILTERED_ENV]: '1' };
    if (process.stderr.isTTY) {
      env[TTY_ENV] = '1';
      env.COLUMNS = String(process.stderr.columns ?? 80);
    }
    // The IPC channel is how the child learns that this process died (see exitWithParent).
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: ['inherit', 'inherit', 'pipe', 'ipc'], env });
    const filter = new NativeNoiseFilter((s) => process.stderr.write(s));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => filter.push(s));
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const onTerm = forward('SIGTERM');
    const onHup = forward('SIGHUP');
    // SIGINT from a terminal reaches the child too; one sent to this process alone is passed on.
    // Either way this process stays until the child has gone, and exits with its code.
    const onInt = forward('SIGINT');
    process.on('SIGTERM', onTerm).on('SIGHUP', onHup).on('SIGINT', onInt);
    child.on('error', (err) => {
      process.stderr.write(`cellseg: could not start the command: ${err.message}\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => {
      filter.end();
      process.off('SIGTERM', onTerm).off('SIGHUP', onHup).off('SIGINT', onInt);
      if (code !== null) return resolve(code);
      if (signal !== 'SIGINT' && signal !== 'SIGTERM' && signal !== 'SIGHUP') {
        // A native crash (SIGSEGV, SIGABRT, an OOM kill): one line, as cli/report-error.ts does.
        process.stderr.write(`cellseg: internal error: the command died of ${signal} -- this is a bug, please report it (run again with --verbose for Dawn's log)\n`);
      }
      resolve(signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : 70);
    });
  });
}

/**
 * In the child of runFilteredChild: when the parent dies (kill -9 of the `cellseg` the user
 * started), the IPC channel closes and the child dies the same way, instead of training on as an
 * orphan that a resumed run would race with. The channel does not keep the child alive.
 */
export function exitWithParent(): void {
  if (process.env[FILTERED_ENV] !== '1' || !process.channel) return;
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.channel.unref();
}

/** In the child of runFilteredChild: the parent's stderr is a terminal, so progress bars show. */
export function adoptParentTty(): void {
  if (process.env[FILTERED_ENV] === '1' && process.env[TTY_ENV] === '1' && !process.stderr.isTTY) {
    Object.assign(process.stderr, { isTTY: true, columns: Number(process.env.COLUMNS) || 80 });
  }
}
