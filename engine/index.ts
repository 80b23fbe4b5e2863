// The public API of the engine: `import * as cg from './engine'`.
export { init, rt, Params, type Runtime, type KernelDef } from '../runtime/runtime';
export { formatProfile, kernelName, type ProfileReport, type ProfileRow } from '../runtime/profiler';
export { getGpu, type Gpu } from '../runtime/device';
export type { DType } from '../runtime/dtype';
export {
  Tensor,
  empty,
  fromArray,
  full,
  zeros,
  ones,
  arange,
  rand,
  randn,
  scope,
  scopeAsync,
  memory,
  contiguousCopy,
} from './tensor';
export { backward, noGrad, isGradEnabled, record, type GradNode } from './autograd';
export { setFusion, isFusionEnabled } from './lazy';
export * from './ops/elementwise';
export * from './ops/view';
export * from './ops/reduce';
export * from './ops/gather';
export * from './ops/norm';
export * from './ops/matmul';
export * from './ops/sort';
export * from './nn';
export * from './optim';
export * from './ops/select-mask';
export * from './ops/roi-align';
export * from './ops/conv';
export * from './ops/conv-frozen-bn';
export * from './ops/conv-transpose';
export * from './ops/losses';
export * from './ops/softmax';
export * from './ops/argreduce';
export * from './ops/cumsum';
export * from './ops/join';
export * from './ops/pad';
export * from './ops/boxes';
export * from './ops/pool';
export * from './ops/paste-masks';
export * from './ops/custom';
export { autocast, autocastAvailable, isAutocastEnabled } from './amp/autocast';
