// Dawn's Node binding learns that GPU work finished (onSubmittedWorkDone, mapAsync, ...) by polling:
// while a promise is pending it re-queues a native callback with the global `setImmediate`, so the
// main thread spins for the whole wait. On a CPU driver that spin takes a core from the threads
// doing the GPU's work: on lavapipe with 2 cores, a 128→128 3×3 conv at 32² took 77 ms with the
// spin and 56 ms with the main thread asleep, and the spin alone used 66 ms of CPU per call.
//
// The pacer wraps the global `setImmediate`: Dawn's callbacks (native functions without a name,
// which is all Dawn passes) run at once for the first `SPIN_MS` of a wait, as before, so
// sub-millisecond waits keep their latency; after that each poll first sleeps (Atomics.wait: the
// thread sleeps, nothing spins) for a tenth of the time waited so far, at most `MAX_SLEEP_MS`. The
// added latency is then about 10 % of the wait, and polling costs ~1 % of a core. Every other
// setImmediate caller gets Node's own function untouched.

/** Spin (poll at once) this long into a wait: small dispatches finish within it. */
export const SPIN_MS = Number((typeof process !== 'undefined' && process.env.CELLGPU_DAWN_SPIN_MS) || 0.1);
/** Never block the event loop longer than this per poll. */
export const MAX_SLEEP_MS = 1;
/** A gap this long between two Dawn polls starts a new wait (within one, polls come every
 *  10–50 µs: the sleep happens before the next poll is queued). */
const NEW_WAIT_GAP_MS = 0.3;

/** How long to sleep before the next poll, `waitedMs` into a wait (0: poll at once). */
export function pollDelayMs(waitedMs: number): number {
  if (waitedMs < SPIN_MS) return 0;
  return Math.min(MAX_SLEEP_MS, Math.max(0.02, waitedMs * 0.1));
}

export interface PacerStats {
  installed: boolean;
  /** Dawn polls seen, and how many of them slept first. */
  polls: number;
  sleeps: number;
  /** Milliseconds the main thread slept instead of spinning. */
  sleptMs: number;
}

const stats: PacerStats = { installed: false, polls: 0, sleeps: 0, sleptMs: 0 };

export function pacerStats(): PacerStats {
  return { ...stats };
}

let waitStart = 0;
let lastPoll = -Infinity;

/** The runtime calls this as it starts awaiting Dawn (sync, readback): the wait starts now, however
 *  soon after the last one, so each short wait gets its spin. */
export function pacerWaitBegins(): void {
  waitStart = performance.now();
  lastPoll = waitStart;
}

const fnToString = Function.prototype.toString;
const isDawnPoll = (fn: unknown): boolean => typeof fn === 'function' && fn.name === '' && fnToString.call(fn).includes('[native code]');

/**
 * Install the pacer (Node only, once; `CELLGPU_DAWN_SPIN=1` leaves Dawn spinning, for comparison).
 * Dawn looks `setImmediate` up on the global object at every poll, so wrapping it is enough.
 */
export function installDawnPacer(): void {
  if (stats.installed || typeof setImmediate !== 'function' || typeof SharedArrayBuffer !== 'function') return;
  if (typeof process !== 'undefined' && process.env.CELLGPU_DAWN_SPIN === '1') return;
  const nodeSetImmediate = globalThis.setImmediate;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const paced = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!isDawnPoll(callback)) return nodeSetImmediate(callback, ...args);
    let now = performance.now();
    if (now - lastPoll > NEW_WAIT_GAP_MS) waitStart = now;
    stats.polls++;
    const delay = pollDelayMs(now - waitStart);
    if (delay > 0) {
      Atomics.wait(sleeper, 0, 0, delay);
      const after = performance.now();
      stats.sleeps++;
      stats.sleptMs += after - now;
      now = after;
    }
    lastPoll = now;
    return nodeSetImmediate(callback, ...args);
  } as typeof setImmediate;
  // Keep util.promisify(setImmediate) working.
  const custom = Symbol.for('nodejs.util.promisify.custom');
  const d = Object.getOwnPropertyDescriptor(nodeSetImmediate, custom);
  if (d) Object.defineProperty(paced, custom, d);
  globalThis.setImmediate = paced;
  stats.installed = true;
}
