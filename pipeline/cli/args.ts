// Progress bars for long steps (on stderr, only when it is a terminal, so logs and tests stay clean)
// and small option parsers shared by the commands.
import cliProgress from 'cli-progress';
import { UserError } from '../../runtime/errors';
import { CELL_TYPES, type CellType } from '../data/cell-types';

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export function progress(label: string, total: number): Progress {
  if (!process.stderr.isTTY || total <= 1) return { tick: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {eta_formatted}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { tick: (n = 1) => bar.increment(n), stop: () => bar.stop() };
}

export function parseIntOption(name: string, min: number) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UserError(`${name} must be an integer >= ${min}, got "${v}"`);
    return Number(v);
  };
}

export function parseNumberList(name: string, v: string, length?: number): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n)) || (length !== undefined && nums.length !== length)) {
    throw new UserError(`${name} must be ${length ?? 'a list of'} comma-separated numbers, got "${v}"`);
  }
  return nums;
}

/** `--max-dets 1,100,1000`: COCOeval's three maxDets, positive integers. */
export function parseMaxDets(v: string): number[] {
  const maxDets = parseNumberList('--max-dets', v, 3);
  if (maxDets.some((m) => !Number.isInteger(m) || m < 1)) throw new UserError('--max-dets values must be positive integers');
  return maxDets;
}

/** "a,b,c" in the order shsy5y, astro, cort. */
export function parsePerType(name: string, v: string): Record<CellType, number> {
  const n = parseNumberList(name, v, 3);
  return Object.fromEntries(CELL_TYPES.map((t, i) => [t, n[i]!])) as Record<CellType, number>;
}
