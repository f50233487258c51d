/**
 * `usage_events` rows in ClickHouse's RowBinary format: about a third of the bytes of JSONEachRow and much less
 * parsing on the ClickHouse side and encoding on ours (measured in BENCHMARKS.md, bench:ingest). The column
 * order is USAGE_COLUMNS; the insert names them, so `ingested_at` takes its DEFAULT.
 *
 * RowBinary (ClickHouse docs, "Formats: RowBinary"): integers little-endian; String = LEB128 length + bytes
 * (LowCardinality(String) is written as String); Nullable = one byte 1 for NULL, else 0 and the value; Bool one
 * byte; UUID = its two 64-bit halves, each little-endian; DateTime64(3) = Int64 milliseconds;
 * Map(String, String) = LEB128 count, then key, value pairs.
 */
import { hexValue } from './hex';
import type { UsageRow } from './rows';

export const USAGE_COLUMNS = [
  'event_id',
  'occurred_at',
  'org_id',
  'team_id',
  'user_id',
  'project_id',
  'application',
  'environment',
  'provider',
  'operation',
  'request_model',
  'response_model',
  'streaming',
  'service_tier',
  'status',
  'error_type',
  'duration_ms',
  'time_to_first_token_ms',
  'input_tokens',
  'cache_read_input_tokens',
  'cache_creation_input_tokens',
  'output_tokens',
  'reasoning_output_tokens',
  'client_cost_nanousd',
  'cost_nanousd',
  'price_version',
  'cost_status',
  'tags',
  'sdk',
  'schema_fingerprint',
  'kafka_topic',
  'kafka_partition',
  'kafka_offset',
] as const satisfies readonly (keyof UsageRow)[];

/** Where byte k of a canonical UUID's 16 starts in its 36-character text (dashes after bytes 3, 5, 7, 9). */
const UUID_HEX_AT: readonly number[] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  /** A non-negative safe integer as UInt64. */
  u64(v: number): void {
    this.room(8);
    this.buf.writeUInt32LE(v % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }
  /** An integer as Int64 (from a number or a decimal string; a safe integer without a BigInt). */
  i64(value: number | string): void {
    this.room(8);
    // up to 15 characters a decimal string is a safe integer (|v| < 10^15 < 2^53)
    const v = typeof value === 'string' && value.length <= 15 ? Number(value) : value;
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      const hi = Math.floor(v / 0x1_0000_0000);
      this.buf.writeUInt32LE(v - hi * 0x1_0000_0000, this.pos);
      this.buf.writeInt32LE(hi, this.pos + 4);
    } else {
      this.buf.writeBigInt64LE(BigInt(v), this.pos);
    }
    this.pos += 8;
  }
  uleb(n: number): void {
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      this.u8(b);
    } while (n > 0);
  }
  str(s: string): void {
    const n = s.length;
    this.room(n * 3 + 5);
    // Short ASCII (almost every value): the length byte, then the characters copied in the same pass that checks
    // them; a native Buffer.write costs more than the copy for strings this short.
    if (n < 0x80) {
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[start + i] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = start + n;
        return;
      }
    } else if (isAscii(s)) {
      this.uleb(n);
      this.buf.write(s, this.pos, 'latin1');
      this.pos += n;
      return;
    }
    const bytes = Buffer.from(s, 'utf8');
    this.uleb(bytes.length);
    this.room(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }
  /** A canonical UUID (validated upstream): its two 64-bit halves, each little-endian, so bytes 7..0, 15..8. */
  uuid(id: string): void {
    this.room(16);
    const at = this.pos;
    for (let k = 0; k < 16; k++) {
      const c = UUID_HEX_AT[k] ?? 0;
      this.buf[at + (k < 8 ? 7 - k : 23 - k)] =
        (hexValue(id.charCodeAt(c)) << 4) | hexValue(id.charCodeAt(c + 1));
    }
    this.pos += 16;
  }
  nullableU32(v: number | null): void {
    if (v === null) {
      this.u8(1);
      return;
    }
    this.u8(0);
    this.u32(v);
  }
}

/** Appends rows one at a time (so a batch never holds all its row objects at once), in USAGE_COLUMNS order. */
export class UsageRowWriter {
  private readonly w: Writer;
  rows = 0;
  constructor(expectedRows = 1024) {
    this.w = new Writer(Math.max(1024, expectedRows * 300));
  }
  append(r: UsageRow): void {
    appendRow(this.w, r);
    this.rows++;
  }
  /** The encoded rows (a view of the writer's buffer). */
  bytes(): Buffer {
    return this.w.buf.subarray(0, this.w.pos);
  }
}

/** Encodes rows in USAGE_COLUMNS order. */
export function encodeUsageRows(rows: readonly UsageRow[]): Buffer {
  const out = new UsageRowWriter(rows.length);
  for (const r of rows) out.append(r);
  return out.bytes();
}

function appendRow(w: Writer, r: UsageRow): void {
  {
    w.uuid(r.event_id);
    w.i64(r.occurred_at);
    w.str(r.org_id);
    w.str(r.team_id);
    w.str(r.user_id);
    w.str(r.project_id);
    w.str(r.application);
    w.str(r.environment);
    w.str(r.provider);
    w.str(r.operation);
    w.str(r.request_model);
    w.str(r.response_model);
    w.u8(r.streaming ? 1 : 0);
    w.str(r.service_tier);
    w.str(r.status);
    w.str(r.error_type);
    w.nullableU32(r.duration_ms);
    w.nullableU32(r.time_to_first_token_ms);
    w.u64(r.input_tokens);
    w.u64(r.cache_read_input_tokens);
    w.u64(r.cache_creation_input_tokens);
    w.u64(r.output_tokens);
    w.u64(r.reasoning_output_tokens);
    if (r.client_cost_nanousd === null) w.u8(1);
    else {
      w.u8(0);
      w.i64(r.client_cost_nanousd);
    }
    w.i64(r.cost_nanousd);
    w.str(r.price_version);
    w.str(r.cost_status);
    const tags = Object.entries(r.tags);
    w.uleb(tags.length);
    for (const [k, v] of tags) {
      w.str(k);
      w.str(v);
    }
    w.str(r.sdk);
    w.str(r.schema_fingerprint);
    w.str(r.kafka_topic);
    w.u32(r.kafka_partition);
    w.u64(Number(r.kafka_offset));
  }
}
