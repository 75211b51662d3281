export * from './container-pool.errors';
export * from './rollout.errors';
export * from './session.errors';
