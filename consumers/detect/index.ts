export { createDetect } from './detect';
export type { Detect, DetectOptions } from './detect';
export { createDetectMetrics } from './metrics';
export type { DetectMetrics } from './metrics';
export { DEFAULT_SPIKE_SETTINGS, SpikeDetector, scopeKey } from './spike';
export type { BaselineTier, SpikeLevel, SpikeSettings } from './spike';
export { BudgetLedger, DEFAULT_BUDGET_SETTINGS } from './budgets';
export type { Budget, BudgetEvent, BudgetSettings } from './budgets';
export { alertId, formatUsd, spikeAlert } from './alerts';
