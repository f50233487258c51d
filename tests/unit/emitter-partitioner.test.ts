import { Partitioners } from 'kafkajs';
import type { PartitionMetadata } from 'kafkajs';
import { cachedDefaultPartitioner } from '../../producers/emitter/partitioner';

const metadata = (n: number): PartitionMetadata[] =>
  Array.from({ length: n }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
  }));

describe('cachedDefaultPartitioner', () => {
  it("gives kafkajs's default answer for every key and partition count, asked repeatedly", () => {
    const cached = cachedDefaultPartitioner();
    const plain = Partitioners.DefaultPartitioner();
    const keys = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `team-${i}` : `équipe-${i * 7919}`));
    for (const n of [1, 3, 6, 12, 6]) {
      const partitionMetadata = metadata(n);
      for (let round = 0; round < 3; round++) {
        for (const key of keys) {
          const args = { topic: 't', partitionMetadata, message: { key, value: 'v' } };
          expect(cached(args)).toBe(plain(args));
        }
      }
    }
  });

  it('leaves an explicit partition and key-less messages to the default', () => {
    const cached = cachedDefaultPartitioner();
    const partitionMetadata = metadata(6);
    expect(cached({ topic: 't', partitionMetadata, message: { key: 'a', value: 'v', partition: 4 } })).toBe(
      4,
    );
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) seen.add(cached({ topic: 't', partitionMetadata, message: { value: 'v' } }));
    expect(seen.size).toBeGreaterThan(1); // round robin, not one cached answer
  });
});
