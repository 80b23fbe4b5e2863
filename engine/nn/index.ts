// nn: modules with named parameters/buffers and state dicts, layers, initialisers.
export * from './module';
export * from './linear';
export * from './init';
