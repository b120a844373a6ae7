export * from './common.ts';
export * from './messages.ts';
export * from './api.ts';
export * from './alert.ts';
export * from './audit.ts';
export * from './config.ts';
export * from './agent.ts';
