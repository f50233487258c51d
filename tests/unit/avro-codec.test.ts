import fs from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import {
  SchemaRegistry,
  canonicalForm,
  crc64Avro,
  fingerprintBytes,
  incompatiblePairs,
} from '../../schemas/codec';
import { TokenledgerError } from '../../lib/errors';

interface FixtureCase {
  schema: unknown;
  canonical: string;
  fingerprint_le_bytes: string;
  fingerprint_signed: number | string;
  reference: string;
}
const fixtures = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../fixtures/avro-fingerprints.json'), 'utf8'),
) as {
  cases: FixtureCase[];
};

describe('CRC-64-AVRO and Parsing Canonical Form against independent implementations (Python avro, fastavro)', () => {
  test('the fixture file is not empty', () => {
    expect(fixtures.cases.length).toBeGreaterThan(20);
  });
  test.each(fixtures.cases.map((c) => [c.canonical.slice(0, 60), c] as const))('%s', (_name, c) => {
    const type = avro.Type.forSchema(c.schema as avro.Schema);
    expect(canonicalForm(type)).toBe(c.canonical);
    expect(fingerprintBytes(type).toString('hex')).toBe(c.fingerprint_le_bytes);
  });
  test('the 64-bit value matches the Java reference for "null" (SchemaNormalization.parsingFingerprint64)', () => {
    expect(BigInt.asIntN(64, crc64Avro('"null"'))).toBe(7195948357588979594n);
  });
  test('the empty string fingerprints to the algorithm seed', () => {
    expect(crc64Avro('')).toBe(0xc15d213aa4d7a795n);
  });
});

describe('single-object encoding', () => {
  const v1 = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'string' }] };
  const v2 = {
    type: 'record',
    name: 'R',
    fields: [
      { name: 'a', type: 'string' },
      { name: 'b', type: ['null', 'long'], default: null },
    ],
  };
  const oldOnly = new SchemaRegistry<{ a: string }>('r', [{ version: 1, schema: v1 }]);
  const both = new SchemaRegistry<{ a: string; b: number | null }>('r', [
    { version: 1, schema: v1 },
    { version: 2, schema: v2 },
  ]);

  test('C3 01, the 8 fingerprint bytes, then the body', () => {
    const msg = both.encode({ a: 'x', b: 5 });
    expect(msg.subarray(0, 2).toString('hex')).toBe('c301');
    expect(msg.subarray(2, 10).equals(both.current.fingerprint)).toBe(true);
    expect(msg.subarray(10).equals(both.current.type.toBuffer({ a: 'x', b: 5 }))).toBe(true);
  });
  test('data written with an old version reads with the current one (missing field → default)', () => {
    const old = oldOnly.encode({ a: 'hello' });
    expect(both.decode(old)).toEqual({ value: { a: 'hello', b: null }, writerVersion: 1 });
  });
  test('unknown fingerprint, bad magic and a truncated body are typed errors', () => {
    const msg = both.encode({ a: 'x', b: 1 });
    const wrongFp = Buffer.from(msg);
    wrongFp.writeUInt8(wrongFp.readUInt8(5) ^ 0xff, 5);
    expect(() => both.decode(wrongFp)).toThrow(
      expect.objectContaining({ code: 'CODEC_UNKNOWN_FINGERPRINT' }) as Error,
    );
    expect(() => both.decode(Buffer.from('{"a":"json"}'))).toThrow(
      expect.objectContaining({ code: 'CODEC_BAD_MAGIC' }) as Error,
    );
    expect(() => both.decode(msg.subarray(0, msg.length - 2))).toThrow(TokenledgerError);
    expect(() => both.decode(msg.subarray(0, msg.length - 2))).toThrow(/body does not decode/);
  });
  test('an incompatible change is found (a new field without a default cannot read old data)', () => {
    const bad = {
      type: 'record',
      name: 'R',
      fields: [
        { name: 'a', type: 'string' },
        { name: 'c', type: 'long' },
      ],
    };
    const versions = [v1, bad].map((schema, i) => {
      const type = avro.Type.forSchema(schema as avro.Schema);
      return {
        version: i + 1,
        type,
        fingerprint: fingerprintBytes(type),
        fingerprintHex: fingerprintBytes(type).toString('hex'),
      };
    });
    expect(incompatiblePairs(versions)).toEqual([expect.objectContaining({ reader: 2, writer: 1 })]);
    expect(
      () =>
        new SchemaRegistry('r', [
          { version: 1, schema: v1 },
          { version: 2, schema: bad },
        ]),
    ).toThrow(/cannot read data written with v1/);
  });
});
