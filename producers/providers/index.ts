export { wrapAnthropic } from './anthropic';
export type { AnthropicWrapperOptions } from './anthropic';
export { CLOSED_EARLY, DEFAULT_DRAIN_TIMEOUT_MS, classifyError } from './meter';
export type { TokenUsage, WrapperOptions } from './meter';
export { wrapOpenAI } from './openai';
export type { OpenAIWrapperOptions } from './openai';
export { createMeteredFetch } from './openai-compatible';
export type { FetchFunction, MeteredFetchOptions } from './openai-compatible';
