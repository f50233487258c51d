export { createEmitter } from './emitter';
export type { Emitter } from './emitter';
export { USAGE_TOPIC, resolveOptions } from './options';
export type { EmitterOptions, EventDefaults } from './options';
export { DROP_REASONS } from './types';
export type { DropReason, EmitterError, EmitterMetrics, UsageEventInput, UsageRecorder } from './types';
export { uuidv7 } from './uuid';
