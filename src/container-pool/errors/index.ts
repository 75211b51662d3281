export * from './container-pool.errors';
