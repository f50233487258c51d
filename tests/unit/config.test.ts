import { describeSettings, clickhouseUrl, kafkaBrokers, loadConfig, redactedConfig } from '../../lib/config';
import { TokenledgerError } from '../../lib/errors';

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof TokenledgerError && err.code === 'CONFIG_INVALID') return err.message;
    throw err;
  }
  throw new Error('expected an invalid configuration');
}

describe('loadConfig', () => {
  test('defaults point at the local broker and endpoint', () => {
    const c = loadConfig({});
    expect(kafkaBrokers(c)).toEqual(['127.0.0.1:9092']);
    expect(clickhouseUrl(c)).toBe('http://127.0.0.1:8123/');
    expect(c.kafka.brokers).toBeUndefined();
    expect(c.clickhouse).toMatchObject({
      url: undefined,
      user: 'default',
      password: '',
      database: 'tokenledger',
    });
    expect(c.local).toMatchObject({
      kafkaPort: 9092,
      kafkaControllerPort: 9093,
      clickhousePort: 8123,
      kafkaHeapMb: 512,
    });
  });

  test('every problem is reported at once, each naming the variable and its value', () => {
    const msg = problems({
      KAFKA_BROKERS: 'localhost',
      TOKENLEDGER_KAFKA_PORT: 'abc',
      TOKENLEDGER_KAFKA_HEAP_MB: '2048',
      LOG_LEVEL: 'loud',
      CLICKHOUSE_URL: 'not a url',
    });
    expect(msg).toMatch(/^invalid configuration \(5 problems\)/);
    expect(msg).toContain('KAFKA_BROKERS="localhost": every broker must be host:port');
    expect(msg).toContain('TOKENLEDGER_KAFKA_PORT="abc"');
    expect(msg).toContain('TOKENLEDGER_KAFKA_HEAP_MB="2048"');
    expect(msg).toContain('LOG_LEVEL="loud"');
    expect(msg).toContain('CLICKHOUSE_URL="not a url"');
  });

  test('cross-field problems are reported together', () => {
    const msg = problems({
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SSL_CERT_FILE: 'c.pem',
    });
    expect(msg).toContain(
      'KAFKA_SASL_MECHANISM is set: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are both required',
    );
    expect(msg).toContain('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE must be set together');
  });

  test('cross-field rules: SASL needs user and password; ports must differ', () => {
    expect(problems({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toContain(
      'KAFKA_SASL_MECHANISM is not',
    );
    expect(problems({ TOKENLEDGER_KAFKA_PORT: '8123' })).toContain('must all differ');
  });

  test('CLICKHOUSE_URL carries user, password and database; explicit variables win', () => {
    const c = loadConfig({ CLICKHOUSE_URL: 'https://alice:s%40cret@ch.example.com:8443/analytics' });
    expect(c.clickhouse).toMatchObject({
      url: 'https://ch.example.com:8443/',
      user: 'alice',
      password: 's@cret',
      database: 'analytics',
    });
    const d = loadConfig({
      CLICKHOUSE_URL: 'https://alice:x@ch.example.com:8443/analytics',
      CLICKHOUSE_USER: 'bob',
      CLICKHOUSE_DATABASE: 'other',
    });
    expect(d.clickhouse).toMatchObject({ user: 'bob', database: 'other' });
  });

  test('Kafka TLS and SASL options are passed through', () => {
    const c = loadConfig({
      KAFKA_BROKERS: 'b1:9093, b2:9093',
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: '/etc/ca.pem',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD: 'pw',
    });
    expect(c.kafka.brokers).toEqual(['b1:9093', 'b2:9093']);
    expect(c.kafka.ssl).toEqual({ rejectUnauthorized: true, caFile: '/etc/ca.pem' });
    expect(c.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'svc', password: 'pw' });
  });

  test('redactedConfig never contains a secret', () => {
    const c = loadConfig({
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD: 'kafka-secret-1',
      CLICKHOUSE_URL: 'http://u:ch-secret-2@h:8123/db',
    });
    const text = JSON.stringify(redactedConfig(c));
    expect(text).not.toContain('kafka-secret-1');
    expect(text).not.toContain('ch-secret-2');
    expect(text).toContain('<redacted>');
  });

  test('every setting is documented', () => {
    const settings = describeSettings();
    expect(settings.length).toBeGreaterThan(15);
    for (const s of settings) expect(s.doc.length).toBeGreaterThan(10);
    expect(
      settings
        .filter((s) => s.secret)
        .map((s) => s.env)
        .sort(),
    ).toEqual(['CLICKHOUSE_PASSWORD', 'KAFKA_SASL_PASSWORD', 'KAFKA_SSL_KEY_FILE'].sort());
  });
});

describe('found in review', () => {
  test('a password inside an invalid URL is never echoed', () => {
    const msg = problems({ CLICKHOUSE_URL: 'ftp://admin:s3cr3t@db.example.com/x' });
    expect(msg).not.toContain('s3cr3t');
    expect(msg).toContain('ftp://admin:<redacted>@db.example.com/x');
  });
  test('bad percent-encoding and a bad database path are problems in the list, not crashes', () => {
    const msg = problems({ CLICKHOUSE_URL: 'http://u:%zz@h:8123/bad-db', TOKENLEDGER_KAFKA_PORT: 'x' });
    expect(msg).toMatch(/^invalid configuration \(3 problems\)/);
    expect(msg).toContain('not valid percent-encoding');
    expect(msg).toContain('database "bad-db"');
  });
  test('a deployable validates only the fragments it reads', () => {
    const env = { KAFKA_SASL_MECHANISM: 'plain', TOKENLEDGER_CLICKHOUSE_PORT: '18124' };
    expect(() => loadConfig(env)).toThrow(/KAFKA_SASL_MECHANISM is set/);
    const c = loadConfig(env, ['clickhouse', 'local', 'log']);
    expect(c.local.clickhousePort).toBe(18124);
    expect(c.kafka.sasl).toBeUndefined();
  });
});
