import { ClickHouseError } from '@clickhouse/client';
import { TokenledgerError, classifyClickHouseError, isTokenledgerError } from '../../lib/errors';

describe('classifyClickHouseError', () => {
  const chError = (code: string, type: string): ClickHouseError =>
    new ClickHouseError({ message: 'm', code, type });

  test('by ClickHouse code: overload and network are retriable, bad SQL is not', () => {
    expect(classifyClickHouseError(chError('202', 'TOO_MANY_SIMULTANEOUS_QUERIES'))).toEqual({
      retriable: true,
      code: '202',
      kind: 'server',
    });
    expect(classifyClickHouseError(chError('252', 'TOO_MANY_PARTS')).retriable).toBe(true);
    expect(classifyClickHouseError(chError('62', 'SYNTAX_ERROR'))).toEqual({
      retriable: false,
      code: '62',
      kind: 'server',
    });
    expect(classifyClickHouseError(chError('60', 'UNKNOWN_TABLE')).retriable).toBe(false);
  });

  test('a message that merely mentions a retriable word is not retriable (codes, not substrings)', () => {
    expect(
      classifyClickHouseError(
        new ClickHouseError({ message: 'Timeout exceeded, network error', code: '27', type: 'X' }),
      ).retriable,
    ).toBe(false);
  });

  test('socket errors are retriable connection failures, also when wrapped as a cause', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    expect(classifyClickHouseError(refused)).toEqual({
      retriable: true,
      code: 'ECONNREFUSED',
      kind: 'connection',
    });
    expect(classifyClickHouseError(new Error('wrapped', { cause: refused })).kind).toBe('connection');
  });

  test("the client's request timeout is a retriable timeout; anything else is unknown", () => {
    expect(classifyClickHouseError(new Error('Timeout error.'))).toEqual({
      retriable: true,
      code: 'TIMEOUT',
      kind: 'timeout',
    });
    expect(classifyClickHouseError(new Error('boom'))).toEqual({
      retriable: false,
      code: 'UNKNOWN',
      kind: 'unknown',
    });
  });
});

test('TokenledgerError carries code, cause, retriable and context', () => {
  const cause = new Error('low level');
  const e = new TokenledgerError('KAFKA_UNAVAILABLE', 'no broker', {
    cause,
    retriable: true,
    context: { topic: 't', partition: 3 },
  });
  expect(e).toBeInstanceOf(Error);
  expect(e).toMatchObject({
    code: 'KAFKA_UNAVAILABLE',
    retriable: true,
    context: { topic: 't', partition: 3 },
    cause,
  });
  expect(isTokenledgerError(e, 'KAFKA_UNAVAILABLE')).toBe(true);
  expect(isTokenledgerError(e, 'TIMEOUT')).toBe(false);
  expect(isTokenledgerError(cause)).toBe(false);
});
