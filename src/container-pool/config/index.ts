export * from './container-spec';
export * from './pool-env';
export * from './resolve-options';
export * from './settings';
