// One benchmark result row, as `npm run bench -- <suite> --json FILE` writes it.
export interface BenchRow {
  suite: string;
  case: string;
  /** Median wall (or GPU timestamp) milliseconds per iteration. */
  ms: number;
  gflops?: number;
  gbps?: number;
  /** Peer name (e.g. 'tfjs-webgpu', 'jax-js', 'pytorch-cpu') and its median ms on the same case. */
  peer?: string;
  peer_ms?: number;
  /** peer_ms / ms: above 1 means we are faster. */
  ratio?: number;
  /** Free-form extras (peak bytes, counts, fraction of machine peak...). */
  [extra: string]: unknown;
}

export interface BenchContext {
  /** Repeats after warm-up; suites pick a sensible default when absent. */
  repeats?: number;
  log: (msg: string) => void;
}

/** A suite lives in bench/suites/<name>.ts and exports `run` of this type. */
export type BenchSuite = (ctx: BenchContext) => Promise<BenchRow[]>;
