export * from './container-pool-options.interface';
export * from './container.interface';
export * from './exec-result.interface';
export * from './run-request.interface';
export * from './output-event.interface';
export * from './http-settings.interface';
export * from './events.interface';
export * from './profile-info.interface';
