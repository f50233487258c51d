// Integration tests start JVMs and engines on a shared 2-core machine; each test still bounds its own waits
// with messages that say what did not happen (tests/helpers), so a hang becomes a clear failure, not this.
jest.setTimeout(180_000);
