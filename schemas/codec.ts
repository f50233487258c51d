/**
 * Avro single-object encoding (Avro specification, "Single-object encoding"): the two marker bytes C3 01, the
 * 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the Avro
 * binary body. Any consumer holding the .avsc files can decode a message without a schema registry.
 *
 * A `SchemaRegistry` knows every published version of one record: it encodes with the current version and
 * decodes whatever version wrote a message, resolving it to the current reader schema with a cached resolver.
 */
import avro from 'avsc';
import type { Type } from 'avsc';
import { TokenledgerError } from '../lib/errors';

export const MAGIC = Buffer.from([0xc3, 0x01]);
export const HEADER_LENGTH = MAGIC.length + 8;

// CRC-64-AVRO (Rabin fingerprint), exactly as the specification's reference code.
const EMPTY = 0xc15d213aa4d7a795n;
const MASK64 = 0xffffffffffffffffn;
const FP_TABLE: bigint[] = Array.from({ length: 256 }, (_, i) => {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & (-(fp & 1n) & MASK64));
  return fp;
});

/** The CRC-64-AVRO fingerprint of `text` (UTF-8) as an unsigned 64-bit value. */
export function crc64Avro(text: string): bigint {
  let fp = EMPTY;
  for (const b of Buffer.from(text, 'utf8')) {
    fp = (fp >> 8n) ^ (FP_TABLE[Number((fp ^ BigInt(b)) & 0xffn)] ?? 0n);
  }
  return fp;
}

/** The schema's Parsing Canonical Form (avsc's `schema()` is defined to produce it). */
export function canonicalForm(type: Type): string {
  return JSON.stringify(type.schema());
}

/** The 8 fingerprint bytes of single-object encoding (little-endian). */
export function fingerprintBytes(type: Type): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(crc64Avro(canonicalForm(type)));
  return b;
}

export interface SchemaVersion {
  readonly version: number;
  readonly type: Type;
  readonly fingerprint: Buffer;
  /** Hex of the fingerprint bytes, as they appear on the wire. */
  readonly fingerprintHex: string;
}

export interface Decoded<T> {
  readonly value: T;
  readonly writerVersion: number;
}

export class SchemaRegistry<T> {
  readonly name: string;
  readonly versions: readonly SchemaVersion[];
  readonly current: SchemaVersion;
  private readonly byFingerprint = new Map<string, SchemaVersion>();
  private readonly resolvers = new Map<string, ReturnType<Type['createResolver']>>();

  /**
   * `schemas` in version order; the last is the current (writer and reader) version. `options` reach
   * avsc's `Type.forSchema` (e.g. a registry that maps Avro long to bigint).
   */
  constructor(
    name: string,
    schemas: readonly { version: number; schema: object }[],
    options?: Parameters<typeof avro.Type.forSchema>[1],
  ) {
    this.name = name;
    this.versions = schemas.map(({ version, schema }) => {
      let type: Type;
      try {
        type = avro.Type.forSchema(schema as avro.Schema, options);
      } catch (cause) {
        throw new TokenledgerError('SCHEMA_INVALID', `${name} v${version} is not a valid Avro schema`, {
          cause,
        });
      }
      const fingerprint = fingerprintBytes(type);
      return { version, type, fingerprint, fingerprintHex: fingerprint.toString('hex') };
    });
    const current = this.versions[this.versions.length - 1];
    if (current === undefined) throw new TokenledgerError('SCHEMA_INVALID', `${name}: no schema versions`);
    this.current = current;
    for (const v of this.versions) {
      this.byFingerprint.set(v.fingerprintHex, v);
      if (v !== current) {
        try {
          this.resolvers.set(v.fingerprintHex, current.type.createResolver(v.type));
        } catch (cause) {
          throw new TokenledgerError(
            'SCHEMA_INCOMPATIBLE',
            `${name}: v${current.version} cannot read data written with v${v.version}`,
            {
              cause,
            },
          );
        }
      }
    }
  }

  /** Single-object encoding of `value` with the current schema (the value must already be valid). */
  encode(value: T): Buffer {
    const body = this.current.type.toBuffer(value);
    const out = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
    MAGIC.copy(out, 0);
    this.current.fingerprint.copy(out, MAGIC.length);
    body.copy(out, HEADER_LENGTH);
    return out;
  }

  /**
   * Encodes many values into one freshly allocated buffer and returns a view per value: one allocation per
   * batch instead of two per value (the emitter's hot path).
   */
  encodeMany(values: readonly T[], sizeHint = 256): Buffer[] {
    let capacity = Math.max(1024, values.length * sizeHint);
    for (;;) {
      const buf = Buffer.allocUnsafe(capacity);
      const views: Buffer[] = [];
      let pos = 0;
      let fits = true;
      for (const v of values) {
        if (pos + HEADER_LENGTH > capacity) {
          fits = false;
          break;
        }
        MAGIC.copy(buf, pos);
        this.current.fingerprint.copy(buf, pos + MAGIC.length);
        const end = this.current.type.encode(v, buf, pos + HEADER_LENGTH);
        if (end < 0) {
          fits = false;
          break;
        }
        views.push(buf.subarray(pos, end));
        pos = end;
      }
      if (fits) return views;
      capacity *= 2;
    }
  }

  /** Reads the writer's fingerprint from a message, or throws CODEC_BAD_MAGIC. */
  writerOf(message: Buffer): SchemaVersion | undefined {
    if (message.length < HEADER_LENGTH || message[0] !== 0xc3 || message[1] !== 0x01) {
      throw new TokenledgerError(
        'CODEC_BAD_MAGIC',
        `not an Avro single-object message: expected C3 01 and an 8-byte fingerprint, got ${message.subarray(0, 4).toString('hex') || 'nothing'} (${message.length} bytes)`,
      );
    }
    return this.byFingerprint.get(message.toString('hex', 2, HEADER_LENGTH));
  }

  /** Decodes a message written with any known version into the current version's shape. */
  decode(message: Buffer): Decoded<T> {
    const writer = this.writerOf(message);
    if (writer === undefined) {
      throw new TokenledgerError(
        'CODEC_UNKNOWN_FINGERPRINT',
        `unknown ${this.name} writer schema: fingerprint ${message.toString('hex', 2, HEADER_LENGTH)} is none of ${this.versions.map((v) => `v${v.version}=${v.fingerprintHex}`).join(', ')}`,
        { context: { fingerprint: message.toString('hex', 2, HEADER_LENGTH) } },
      );
    }
    const body = message.subarray(HEADER_LENGTH);
    try {
      const resolver = this.resolvers.get(writer.fingerprintHex);
      const value = this.current.type.fromBuffer(body, resolver) as T;
      return { value, writerVersion: writer.version };
    } catch (cause) {
      throw new TokenledgerError(
        'CODEC_BODY_INVALID',
        `${this.name} v${writer.version} body does not decode: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
    }
  }
}

/**
 * FULL_TRANSITIVE compatibility: every version can read data written by every other version (backward and
 * forward). Returns the pairs that fail, empty when the set is compatible.
 */
export function incompatiblePairs(
  versions: readonly SchemaVersion[],
): { reader: number; writer: number; reason: string }[] {
  const out: { reader: number; writer: number; reason: string }[] = [];
  for (const reader of versions) {
    for (const writer of versions) {
      if (reader === writer) continue;
      try {
        reader.type.createResolver(writer.type);
      } catch (err) {
        out.push({
          reader: reader.version,
          writer: writer.version,
          reason: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }
  return out;
}
