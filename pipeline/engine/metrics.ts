// metrics.json as Detectron2's JSONWriter writes it: one JSON object per line, appended (so a
// resumed run continues the same file), keys sorted, e.g.
//   {"data_time": 0.01, "eta_seconds": 812.3, "iteration": 19, "loss_fcos_cls": 1.1, ..., "lr": 0.0005, "time": 4.2, "total_loss": 3.4}
// Losses, time and data_time are medians over the logging window (Detectron2's smoothing hint);
// lr and eta are the latest values. Evaluation results go in lines of their own.
// Unlike Detectron2, a resumed run first drops the lines of iterations after its checkpoint (an
// interrupted run wrote them, and they are computed again), so that the file of an interrupted and
// resumed run has the same lines as that of an uninterrupted one.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { asWriteError, writeFileDurable } from '../../runtime/durable-write';

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  // numpy.median: the mean of the two middle values for an even count
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function metricsLine(iteration: number, scalars: Record<string, number>): string {
  const all: Record<string, number> = { iteration, ...scalars };
  const sorted: Record<string, number> = {};
  for (const k of Object.keys(all).sort()) sorted[k] = all[k]!;
  return JSON.stringify(sorted);
}

export class MetricsWriter {
  constructor(readonly file: string) {
    try {
      mkdirSync(dirname(file), { recursive: true });
    } catch (err) {
      throw asWriteError(err, file);
    }
  }
  /** Appends one line; a full disk etc. is a WriteError `FILE: could not write: REASON`. */
  write(iteration: number, scalars: Record<string, number>): void {
    try {
      appendFileSync(this.file, `${metricsLine(iteration, scalars)}\n`);
    } catch (err) {
      throw asWriteError(err, this.file);
    }
  }
}

/**
 * Drops the lines of `file` whose iteration is after `iteration`, and a last line cut short (no
 * newline: the process was killed while appending it); rewrites the file atomically when anything
 * was dropped. Lines that do not parse are kept. Returns the number of lines dropped.
 */
export function trimMetricsAfter(file: string, iteration: number): number {
  if (!existsSync(file)) return 0;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const cut = lines.pop() !== '' ? 1 : 0; // text after the last newline is an unfinished line
  const keep = lines.filter((l) => {
    try {
      const it = (JSON.parse(l) as { iteration?: unknown }).iteration;
      return !(typeof it === 'number' && it > iteration);
    } catch {
      return true;
    }
  });
  const dropped = lines.length - keep.length + cut;
  if (dropped > 0) writeFileDurable(file, keep.map((l) => `${l}\n`).join(''));
  return dropped;
}

/** "1:02:03" / "4:05" as Detectron2's printer formats the ETA. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
