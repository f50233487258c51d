import { chooseProviders, requestedMode } from '../setup/infra-mode';

test('an unknown TOKENLEDGER_TEST_INFRA fails loudly', () => {
  expect(() => requestedMode({ TOKENLEDGER_TEST_INFRA: 'docker' })).toThrow(
    /is not one of auto, env, testcontainers, local/,
  );
  expect(requestedMode({})).toBe('auto');
});

test('auto: env cluster first (per service), then testcontainers with Docker, else local', () => {
  expect(chooseProviders('auto', {}, false)).toEqual({ kafka: 'local', clickhouse: 'local' });
  expect(chooseProviders('auto', {}, true)).toEqual({
    kafka: 'testcontainers',
    clickhouse: 'testcontainers',
  });
  expect(chooseProviders('auto', { KAFKA_BROKERS: 'k:9092' }, false)).toEqual({
    kafka: 'env',
    clickhouse: 'local',
  });
  expect(chooseProviders('auto', { CLICKHOUSE_URL: 'http://c:8123' }, true)).toEqual({
    kafka: 'testcontainers',
    clickhouse: 'env',
  });
});

test('forced modes check their preconditions', () => {
  expect(() => chooseProviders('env', { KAFKA_BROKERS: 'k:9092' }, false)).toThrow(/needs both/);
  expect(() => chooseProviders('testcontainers', {}, false)).toThrow(/no Docker engine/);
  expect(chooseProviders('local', { KAFKA_BROKERS: 'k:9092' }, true)).toEqual({
    kafka: 'local',
    clickhouse: 'local',
  });
});
