// optim: optimizers with parameter groups (fused GPU updates), gradient clipping, lr schedules.
export * from './optimizer';
export * from './sgd';
export * from './adamw';
export * from './clip';
export * from './lr-scheduler';
export * from './state';
export * from './grad-scaler';
