/** Stops what global-setup started, in reverse order. */
export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__TOKENLEDGER_TEST_INFRA__;
  if (state === undefined) return;
  for (const stop of [...state.stops].reverse()) await stop();
  globalThis.__TOKENLEDGER_TEST_INFRA__ = undefined;
}
