/** A produce → consumer-group consume round trip through kafkajs on the real broker. */
import { consumeN, useTestKafka } from '../helpers/kafka';

describe('Kafka round trip', () => {
  const k = useTestKafka();

  test('messages produced with acks=all come back through a consumer group, in order per key, offsets committed', async () => {
    const topic = await k.topic(3);
    const producer = k.kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
    await producer.connect();
    const keys = ['team-a', 'team-b', 'team-c', 'team-d'];
    const messages = Array.from({ length: 200 }, (_, i) => ({
      key: keys[i % keys.length] ?? 'x',
      value: JSON.stringify({ seq: i }),
    }));
    try {
      await producer.send({ topic, acks: -1, messages });
    } finally {
      await producer.disconnect();
    }

    const groupId = k.groupId();
    const got = await consumeN({
      kafka: k.kafka,
      config: k.config,
      topic,
      groupId,
      count: messages.length,
      timeoutMs: 60_000,
    });

    expect(got).toHaveLength(messages.length);
    const seqs = got.map((c) => (JSON.parse(c.message.value?.toString() ?? '{}') as { seq: number }).seq);
    expect(new Set(seqs).size).toBe(messages.length);
    // Same key → same partition → order preserved.
    for (const key of keys) {
      const forKey = got.filter((c) => c.message.key?.toString() === key);
      expect(new Set(forKey.map((c) => c.partition)).size).toBe(1);
      const order = forKey.map(
        (c) => (JSON.parse(c.message.value?.toString() ?? '{}') as { seq: number }).seq,
      );
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
    // The group committed up to the end of every partition.
    const admin = k.kafka.admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(topic);
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      for (const end of ends) {
        const c = committed[0]?.partitions.find((p) => p.partition === end.partition);
        expect(c?.offset).toBe(end.high);
      }
    } finally {
      await admin.disconnect();
    }
  });
});
