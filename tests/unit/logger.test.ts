import { Writable } from 'node:stream';
import { logLevel } from 'kafkajs';
import { createLogger, kafkaLogCreator, kafkaLogLevel } from '../../lib/logger';

/** An in-memory destination whose lines are parsed (pino `sink()` style). */
function memory(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('credentials are redacted wherever they sit', () => {
  const m = memory();
  const log = createLogger({ level: 'info', destination: m.stream });
  log.info(
    {
      password: 'p1',
      clickhouse: { password: 'p2' },
      headers: { authorization: 'Basic abc' },
      sasl: { password: 'p3' },
    },
    'connecting',
  );
  const line = m.lines()[0];
  expect(JSON.stringify(line)).not.toMatch(/p1|p2|p3|Basic abc/);
  expect(line).toMatchObject({
    msg: 'connecting',
    password: '<redacted>',
    clickhouse: { password: '<redacted>' },
  });
});

test('kafkajs logs go into a pino child with module=kafkajs, message as msg', () => {
  const m = memory();
  const log = createLogger({ level: 'debug', destination: m.stream });
  const entry = kafkaLogCreator(log)(logLevel.INFO);
  entry({
    namespace: 'Consumer',
    level: logLevel.WARN,
    label: 'WARN',
    log: { message: 'rebalancing', groupId: 'g1', timestamp: 'now' },
  });
  expect(m.lines()[0]).toMatchObject({ module: 'kafkajs', msg: 'rebalancing', groupId: 'g1', level: 40 });
  expect(kafkaLogLevel(createLogger({ level: 'warn', destination: m.stream }))).toBe(logLevel.WARN);
  expect(kafkaLogLevel(createLogger({ level: 'silent', destination: m.stream }))).toBe(logLevel.NOTHING);
});
