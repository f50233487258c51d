/**
 * Benchmarks: `npm run bench -- <name>` (or `npm run bench:<name>`). Each prints a Markdown table to paste into
 * BENCHMARKS.md, with the command that produced it, and writes its raw figures to .tokenledger/bench/<name>.json.
 */
import { detectBench } from './detect';
import { emitBench } from './emit';
import { engineBlocksBench } from './engine-blocks';
import { endpointInsertBench } from './endpoint-insert';
import { ingestBench } from './ingest';

const BENCHES: Record<string, { describe: string; run: (args: string[]) => Promise<void> }> = {
  endpoint: {
    describe:
      'rows/s inserted through @clickhouse/client into the local ClickHouse endpoint vs the same inserts in-process',
    run: endpointInsertBench,
  },
  emit: {
    describe:
      "events/s from record() into Kafka: naive kafkajs baseline vs the emitter vs Kafka's Java producer",
    run: emitBench,
  },
  'engine-blocks': {
    describe:
      "the engine's cost per raw insert by rows per insert, with and without the rollup views (in-process chdb)",
    run: engineBlocksBench,
  },
  ingest: {
    describe:
      'events/s drained from Kafka into ClickHouse by tokenledger ingest vs the Kafka table engine; freshness; RSS',
    run: ingestBench,
  },
  detect: {
    describe:
      'spike detector vs a rolling z-score on labelled synthetic usage: precision, recall, F1, delay, alerts/team/week',
    run: detectBench,
  },
};

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const bench = name === undefined ? undefined : BENCHES[name];
  if (bench === undefined) {
    const list = Object.entries(BENCHES)
      .map(([n, b]) => `  ${n.padEnd(10)} ${b.describe}`)
      .join('\n');
    process.stderr.write(`usage: npm run bench -- <name> [options]\n\nbenchmarks:\n${list}\n`);
    process.exitCode = name === undefined || name === '--help' ? 0 : 2;
    return;
  }
  await bench.run(args);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
