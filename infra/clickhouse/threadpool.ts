// Imported first by main.ts: queries run on libuv's thread pool, whose size is read when it first starts.
// 4 threads (the default) would let four slow queries block every other request.
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
