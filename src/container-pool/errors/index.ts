export * from './container-pool.errors';
export * from './rollout.errors';
