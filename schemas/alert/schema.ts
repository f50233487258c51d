/**
 * The alert schema versions (v1.avsc, ...) as a SchemaRegistry, loaded once on first use. Avro long is read
 * and written as bigint (money and token counts can pass 2^53); timestamps are converted to and from ms
 * numbers here, so the rest of the code sees `Alert` (types.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import { SchemaRegistry } from '../codec';
import type { Decoded } from '../codec';
import type { Alert, AlertBudget } from './types';

export const ALERT_SCHEMA_DIR = __dirname;

/** Every published version, oldest first. A new version is a new vN.avsc file; never edit a published one. */
export function alertSchemaFiles(): { version: number; file: string }[] {
  return fs
    .readdirSync(ALERT_SCHEMA_DIR)
    .map((f) => /^v(\d+)\.avsc$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), file: path.join(ALERT_SCHEMA_DIR, m[0]) }))
    .sort((a, b) => a.version - b.version);
}

/** Avro long as bigint, exact over the whole 64-bit range. */
const BIGINT_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as string | number),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** The wire shape: every long a bigint. */
type Wire<T> = {
  [K in keyof T]: T[K] extends number ? bigint : T[K] extends number | null ? bigint | null : T[K];
};
type WireBudget = Omit<AlertBudget, 'period_start' | 'period_end' | 'forecast_exhausted_at'> &
  Pick<Wire<AlertBudget>, 'period_start' | 'period_end' | 'forecast_exhausted_at'>;
type WireAlert = Omit<Alert, 'fired_at' | 'window_start' | 'window_end' | 'budget'> &
  Pick<Wire<Alert>, 'fired_at' | 'window_start' | 'window_end'> & { budget: WireBudget | null };

function toWire(a: Alert): WireAlert {
  const b = a.budget;
  return {
    ...a,
    fired_at: BigInt(a.fired_at),
    window_start: BigInt(a.window_start),
    window_end: BigInt(a.window_end),
    budget:
      b === null
        ? null
        : {
            ...b,
            period_start: BigInt(b.period_start),
            period_end: BigInt(b.period_end),
            forecast_exhausted_at: b.forecast_exhausted_at === null ? null : BigInt(b.forecast_exhausted_at),
          },
  };
}

function fromWire(w: WireAlert): Alert {
  const b = w.budget;
  return {
    ...w,
    fired_at: Number(w.fired_at),
    window_start: Number(w.window_start),
    window_end: Number(w.window_end),
    budget:
      b === null
        ? null
        : {
            ...b,
            period_start: Number(b.period_start),
            period_end: Number(b.period_end),
            forecast_exhausted_at: b.forecast_exhausted_at === null ? null : Number(b.forecast_exhausted_at),
          },
  };
}

let registry: SchemaRegistry<WireAlert> | undefined;

export function alertRegistry(): SchemaRegistry<WireAlert> {
  registry ??= new SchemaRegistry<WireAlert>(
    'alert',
    alertSchemaFiles().map(({ version, file }) => ({
      version,
      schema: JSON.parse(fs.readFileSync(file, 'utf8')) as object,
    })),
    {
      wrapUnions: false,
      // every long, also {"type":"long","logicalType":"timestamp-millis"}, which a registry entry misses
      typeHook: (schema) =>
        schema === 'long' || (typeof schema === 'object' && (schema as { type?: unknown }).type === 'long')
          ? BIGINT_LONG
          : undefined,
    },
  );
  return registry;
}

/** Single-object encoding of an alert with the current schema. */
export function encodeAlert(alert: Alert): Buffer {
  return alertRegistry().encode(toWire(alert));
}

/** Decodes an alert written with any known version (throws TokenledgerError CODEC_* on bad input). */
export function decodeAlert(message: Buffer): Decoded<Alert> {
  const d = alertRegistry().decode(message);
  return { value: fromWire(d.value), writerVersion: d.writerVersion };
}
