// The machine's fp32 FMA throughput and copy bandwidth as this runtime sees them (method in
// bench/README.md); other suites divide by these for fraction-of-peak.
import { machinePeak } from '../harness';
import type { BenchSuite } from '../types';

export const run: BenchSuite = async (ctx) => {
  const p = await machinePeak(ctx.repeats ?? 5);
  ctx.log(`fp32 ${p.gflops.toFixed(1)} GFLOP/s, copy ${p.gbps.toFixed(2)} GB/s`);
  return [
    { suite: 'peak', case: 'fp32 fma chains', ms: p.fmaMs, gflops: p.gflops },
    { suite: 'peak', case: `copy ${p.copyMiB} MiB`, ms: p.copyMs, gbps: p.gbps },
  ];
};
