export { Rng, testSeed } from '../../runtime/rng';
export { compareClose, expectClose, numericGrad, unravel } from './compare';
export type { CloseOptions, CloseReport } from './compare';
export { runWgsl, POISON_U32 } from './kernel';
