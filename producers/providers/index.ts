export { wrapAnthropic } from './anthropic';
export type { AnthropicWrapperOptions } from './anthropic';
export { CLOSED_EARLY, DEFAULT_DRAIN_TIMEOUT_MS, classifyError } from './common';
export type { TokenUsage, WrapperOptions } from './common';
export { wrapOpenAI } from './openai';
export type { OpenAIWrapperOptions } from './openai';
export { createMeteredFetch } from './openai-compatible';
export type { FetchFunction, MeteredFetchOptions } from './openai-compatible';
