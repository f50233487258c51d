/**
 * The real ClickHouse engine (npm `chdb`), opened once per process on one data directory. The engine locks its
 * data directory, so exactly one process may host it (DESIGN.md); every HTTP request gets an engine session of
 * its own (about 1 ms to open, measured), so settings, the current database and query parameters never leak
 * between requests, and requests run in parallel on libuv threads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Session, drainPending } from 'chdb';
import type { RawInsertPlan } from './protocol';

export interface QueryResult {
  readonly bytes: Uint8Array;
  readonly rowsRead: number;
  readonly bytesRead: number;
  readonly elapsedSeconds: number;
}

export interface InsertResult {
  readonly rowsWritten: number;
  readonly bytesWritten: number;
  readonly elapsedSeconds: number;
}

export interface EngineSession {
  run(sql: string, format: string): Promise<QueryResult>;
  /** Result chunks in `format`; each chunk is a complete rendering of its rows. */
  stream(sql: string, format: string, signal: AbortSignal): AsyncIterable<Uint8Array>;
  insertRaw(plan: RawInsertPlan, body: Buffer): Promise<InsertResult>;
  close(): void;
}

export interface Engine {
  readonly version: string;
  /** The engine's time zone, sent as X-ClickHouse-Timezone. */
  readonly timezone: string;
  /** A folder for request bodies handed to the engine as files (INSERT ... FROM INFILE). */
  readonly scratchDir: string;
  openSession(): EngineSession;
  close(): Promise<void>;
}

export function openEngine(dataDir: string): Engine {
  fs.mkdirSync(dataDir, { recursive: true });
  // The anchor session keeps the engine open for the life of the process; request sessions come and go.
  const anchor = new Session(dataDir);
  const [version = 'unknown', timezone = 'UTC'] = anchor
    .query('SELECT version(), timezone()', 'TabSeparated')
    .trim()
    .split('\t');
  const scratchDir = path.join(dataDir, '..', 'scratch');
  fs.rmSync(scratchDir, { recursive: true, force: true });
  fs.mkdirSync(scratchDir, { recursive: true });
  return {
    version,
    timezone,
    scratchDir,
    openSession: () => wrap(new Session(dataDir)),
    close: async () => {
      await drainPending();
      anchor.close();
    },
  };
}

function wrap(session: Session): EngineSession {
  return {
    async run(sql, format) {
      const r = await session.queryAsync(sql, { format });
      return { bytes: r.bytes(), rowsRead: r.rowsRead, bytesRead: r.bytesRead, elapsedSeconds: r.elapsed };
    },
    async *stream(sql, format, signal) {
      const s = session.queryStream(sql, { format, signal });
      for await (const chunk of s) {
        yield chunk.raw();
      }
    },
    async insertRaw(plan, body) {
      const r = await session.insert({
        table: plan.table,
        values: body,
        format: plan.format,
        ...(plan.columns === undefined ? {} : { columns: plan.columns }),
      });
      return { rowsWritten: r.rowsWritten, bytesWritten: r.bytesWritten, elapsedSeconds: r.elapsed };
    },
    close: () => {
      session.close();
    },
  };
}
