// Dawn's Node binding learns that GPU work finished (onSubmittedWorkDone, mapAsync, ...) by polling:
// while a promise is pending it re-queues a native callback with the global `setImmediate`, so the
// main thread spins for the whole wait. On a CPU driver that spin takes a core from the threads
// doing the GPU's work: on lavapipe with 2 cores, a 128→128 3×3 conv at 32² took 77 ms with the
// spin and 56 ms with the main thread asleep, and the spin alone used 66 ms of CPU per call.
//
// The pacer wraps the global `setImmediate`: Dawn's callbacks (native functions without a name,
// which is all Dawn passes) run at once for the first `SPIN_MS` of a wait, as before, so short
// waits keep their latency; after that each poll first sleeps (Atomics.wait: the thread sleeps,
// nothing spins) for a twentieth of the time waited so far, at most `MAX_SLEEP_MS`. A wait starts
// when Dawn queues a poll from outside one of its polls (a new promise) and goes on while each poll
// queues the next. The added latency is then ~5 % of the wait plus the kernel's timer slack
// (~55 µs), and polling costs a few % of a core. Every other setImmediate caller gets Node's own
// function untouched.

/** Spin (poll at once) this long into a wait: small dispatches finish within it. */
export const SPIN_MS = Number((typeof process !== 'undefined' && process.env.CELLGPU_DAWN_SPIN_MS) || 0.5);
/** Never block the event loop longer than this per poll. */
export const MAX_SLEEP_MS = 1;

/** How long to sleep before the next poll, `waitedMs` into a wait (0: poll at once). */
export function pollDelayMs(waitedMs: number): number {
  if (waitedMs < SPIN_MS) return 0;
  return Math.min(MAX_SLEEP_MS, Math.max(0.005, waitedMs * 0.05));
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
  let waitStart = 0;
  let inPoll = false;
  const paced = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!isDawnPoll(callback)) return nodeSetImmediate(callback, ...args);
    const now = performance.now();
    if (!inPoll) waitStart = now; // queued from outside a poll: a new promise, a new wait
    stats.polls++;
    const delay = pollDelayMs(now - waitStart);
    if (delay > 0) {
      Atomics.wait(sleeper, 0, 0, delay);
      stats.sleeps++;
      stats.sleptMs += performance.now() - now;
    }
    return nodeSetImmediate(function (this: unknown, ...a: unknown[]) {
      inPoll = true;
      try {
        callback.apply(this, a);
      } finally {
        inPoll = false;
      }
    }, ...args);
  } as typeof setImmediate;
  // Keep util.promisify(setImmediate) working.
  const custom = Symbol.for('nodejs.util.promisify.custom');
  const d = Object.getOwnPropertyDescriptor(nodeSetImmediate, custom);
  if (d) Object.defineProperty(paced, custom, d);
  globalThis.setImmediate = paced;
  stats.installed = true;
}
