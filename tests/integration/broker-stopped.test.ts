/**
 * A broker stopped mid-test makes the test fail with a clear timeout message instead of hanging. Uses a private
 * broker (own home, own ports) so stopping it does not disturb other tests.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localBroker } from '../../infra/kafka/broker';
import { createKafka } from '../../lib/kafka';
import { consumeN } from '../helpers/kafka';
import { freePortPair, testConfig, testLogger } from '../helpers/env';

test('consuming from a stopped broker fails within its bound, naming topic and brokers', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-broker-stop-'));
  const port = await freePortPair();
  const broker = localBroker({
    home,
    port,
    controllerPort: port + 1,
    heapMb: 384,
    javaHome: process.env.JAVA_HOME,
    startTimeoutMs: 120_000,
  });
  try {
    expect(await broker.start()).toBe('started');
    const config = testConfig({ KAFKA_BROKERS: `127.0.0.1:${port}` });
    const kafka = createKafka({
      config,
      logger: testLogger(),
      // Retries outlast the helper's 8 s bound (about 12 s in all), so the bound is what ends the wait.
      overrides: { retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 2000 } },
    });
    const admin = kafka.admin();
    await admin.connect();
    const topic = 'test.stopped';
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ value: 'one' }] });
    await producer.disconnect();

    // Mid-consume the broker goes away: right after the first (and only) message arrives.
    let stopping: Promise<unknown> | undefined;
    const attempt = consumeN({
      kafka,
      config,
      topic,
      groupId: 'g-stopped',
      count: 2,
      timeoutMs: 8000,
      onMessage: (n) => {
        if (n === 1) stopping = broker.stop();
      },
    });
    // The client keeps retrying the dead broker; the helper's own bound ends the wait with a message that says
    // what did not arrive and from where (rather than the test hanging until jest's timeout).
    await expect(attempt).rejects.toThrow(
      /^timed out after 8\.0 s waiting for 2 messages from topic test\.stopped on 127\.0\.0\.1:\d+ \(got 1\); is the broker up\?$/,
    );
    await expect(attempt).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await stopping).toBe('stopped');
  } finally {
    await broker.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
});
