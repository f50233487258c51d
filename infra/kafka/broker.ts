/**
 * The local Apache Kafka broker: one node in KRaft mode (broker + controller) on 127.0.0.1, from the jars that
 * fetch-jars.sh took from Maven Central. Formats its storage once, starts the JVM detached with a bounded heap
 * and its log in a file, waits until it answers a metadata request and its group coordinator is loaded, stops it
 * cleanly. Used by `tokenledger infra` and the test set-up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { TokenledgerError, isTokenledgerError } from '../../lib/errors';
import {
  assertPortFree,
  isOurProcess,
  killAndWait,
  logTail,
  readPid,
  startDetached,
  stopProcess,
  waitUntil,
} from '../process';
import type { LocalService, ServiceStatus } from '../service';

export const JARS_DIR = path.join(__dirname, 'libs');
const LOG4J_CONFIG = path.join(__dirname, 'log4j2.yaml');

export interface LocalBrokerOptions {
  readonly home: string;
  readonly port: number;
  readonly controllerPort: number;
  /** JVM heap in MB; at most 1024. */
  readonly heapMb: number;
  readonly javaHome: string | undefined;
  readonly startTimeoutMs: number;
  readonly jarsDir?: string;
}

/** Settings that make consumer groups and transactions work on one node: every internal topic at RF 1. */
export function serverProperties(o: { port: number; controllerPort: number; dataDir: string }): string {
  return [
    '# Written by infra/kafka/broker.ts; edits are overwritten on the next start.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${o.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${o.port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${o.dataDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=8',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=8',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // DESIGN.md: topics are created by the project with explicit settings, never by auto-creation.
    'auto.create.topics.enable=false',
    'log.retention.hours=168',
    'log.segment.bytes=268435456',
    '',
  ].join('\n');
}

/** The java binary to use and its major version; a clear error when Java is missing or too old. */
export function resolveJava(javaHome: string | undefined): { bin: string; major: number } {
  const bin = javaHome === undefined ? 'java' : path.join(javaHome, 'bin', 'java');
  const r = spawnSync(bin, ['-version'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error !== undefined) {
    const where =
      javaHome === undefined ? '`java` is not on PATH' : `${bin} does not exist (JAVA_HOME=${javaHome})`;
    throw new TokenledgerError(
      'INFRA_JAVA_MISSING',
      `Java 17 or newer is needed to run the local Kafka broker, but ${where}. Install a JDK 17+ or set JAVA_HOME; or point KAFKA_BROKERS at an existing cluster.`,
      { cause: r.error },
    );
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}${r.stdout}`);
  const first = Number(m?.[1] ?? 0);
  const major = first === 1 ? Number(m?.[2] ?? 0) : first;
  if (major < 17) {
    throw new TokenledgerError(
      'INFRA_JAVA_MISSING',
      `Java 17 or newer is needed to run the local Kafka broker; ${bin} is Java ${major || 'of unknown version'}. Set JAVA_HOME to a JDK 17+.`,
    );
  }
  return { bin, major };
}

/** True when fetch-jars.sh completed for the current pom.xml (its stamp holds the pom's SHA-256). */
function jarsMatchPom(jarsDir: string): boolean {
  try {
    const want = createHash('sha256')
      .update(fs.readFileSync(path.join(__dirname, 'pom.xml')))
      .digest('hex');
    return fs.readFileSync(path.join(jarsDir, '.complete'), 'utf8').trim() === want;
  } catch {
    return false;
  }
}

/** A KRaft cluster id: 16 random bytes, base64url without padding (Kafka's Uuid text form). */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export function localBroker(options: LocalBrokerOptions): LocalService {
  const jarsDir = options.jarsDir ?? JARS_DIR;
  const dir = path.join(options.home, 'kafka');
  const dataDir = path.join(dir, 'data');
  const propsFile = path.join(dir, 'server.properties');
  const pidFile = path.join(dir, 'broker.pid');
  const logFile = path.join(dir, 'broker.log');
  const address = `127.0.0.1:${options.port}`;
  // The properties path is unique per home, so it identifies our JVM among other java processes.
  const markers = ['kafka.Kafka', propsFile];

  const answering = async (timeoutMs = 1500): Promise<boolean> => {
    const kafka = new Kafka({
      clientId: 'tokenledger-infra',
      brokers: [address],
      connectionTimeout: Math.min(1000, timeoutMs),
      requestTimeout: timeoutMs,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    let producer: ReturnType<typeof kafka.producer> | undefined;
    try {
      await admin.connect();
      await admin.describeCluster();
      // Finding the group coordinator creates and loads __consumer_offsets, so the first consumer group of a
      // test or the demo does not meet "coordinator is loading".
      const groups = await admin.describeGroups(['tokenledger-readiness']);
      if (groups.groups.length !== 1) return false;
      // Likewise an idempotent producer's InitProducerId loads __transaction_state.
      producer = kafka.producer({
        idempotent: true,
        // kafkajs refuses an idempotent producer without retries.
        retry: { retries: 2, initialRetryTime: 100 },
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      return true;
    } catch {
      return false;
    } finally {
      await producer?.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  };
  const runningPid = (): number | undefined => {
    const pid = readPid(pidFile);
    return pid !== undefined && isOurProcess(pid, markers) ? pid : undefined;
  };

  return {
    name: 'kafka',
    async start() {
      if (!jarsMatchPom(jarsDir)) {
        throw new TokenledgerError(
          'INFRA_JARS_MISSING',
          `the Kafka broker jars in ${jarsDir} are missing or were fetched for another pom.xml: run \`bash infra/kafka/fetch-jars.sh\` (npm run setup does it)`,
        );
      }
      const java = resolveJava(options.javaHome);
      const existing = runningPid();
      if (existing !== undefined) {
        await waitUntil(`Kafka broker (pid ${existing}) answering on ${address}`, () => answering(), {
          timeoutMs: options.startTimeoutMs,
        });
        return 'already-running';
      }
      await assertPortFree(options.port, 'Kafka broker', 'TOKENLEDGER_KAFKA_PORT');
      await assertPortFree(options.controllerPort, 'Kafka controller', 'TOKENLEDGER_KAFKA_CONTROLLER_PORT');
      fs.mkdirSync(dataDir, { recursive: true });
      fs.writeFileSync(
        propsFile,
        serverProperties({ port: options.port, controllerPort: options.controllerPort, dataDir }),
      );
      const classpath = `${jarsDir}/*`;
      if (!fs.existsSync(path.join(dataDir, 'meta.properties'))) {
        const fmt = spawnSync(
          java.bin,
          [
            '-cp',
            classpath,
            'kafka.tools.StorageTool',
            'format',
            '-t',
            clusterId(),
            '-c',
            propsFile,
            '--ignore-formatted',
          ],
          { encoding: 'utf8', env: { ...process.env, KAFKA_HEAP_OPTS: '-Xmx256m' } },
        );
        if (fmt.status !== 0) {
          throw new TokenledgerError(
            'INFRA_START_FAILED',
            `formatting KRaft storage in ${dataDir} failed (exit ${fmt.status}):\n${fmt.stderr}${fmt.stdout}`,
          );
        }
      }
      const heap = Math.min(options.heapMb, 1024);
      const pid = startDetached({
        command: java.bin,
        args: [
          `-Xmx${heap}m`,
          `-Xms${Math.min(heap, 256)}m`,
          '-XX:+UseG1GC',
          '-XX:MaxGCPauseMillis=20',
          '-XX:+ExitOnOutOfMemoryError',
          '-Djava.awt.headless=true',
          `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
          `-Dkafka.logs.dir=${dir}`,
          '-cp',
          classpath,
          'kafka.Kafka',
          propsFile,
        ],
        cwd: dir,
        env: process.env,
        logFile,
        pidFile,
      });
      try {
        await waitUntil(`Kafka broker answering a metadata request on ${address}`, () => answering(), {
          timeoutMs: options.startTimeoutMs,
          intervalMs: 300,
          failFast: () =>
            isOurProcess(pid, markers)
              ? undefined
              : new TokenledgerError(
                  'INFRA_START_FAILED',
                  `the Kafka broker exited during start-up; last lines of ${logFile}:\n${logTail(logFile)}`,
                ),
        });
      } catch (err) {
        await killAndWait(pid);
        fs.rmSync(pidFile, { force: true });
        if (isTokenledgerError(err, 'TIMEOUT')) {
          throw new TokenledgerError(
            'INFRA_START_TIMEOUT',
            `the Kafka broker did not answer a metadata request with its coordinators loaded on ${address} within ${(options.startTimeoutMs / 1000).toFixed(1)} s (stopped it; raise TOKENLEDGER_INFRA_START_TIMEOUT_MS if the machine is slow); log: ${logFile}`,
            { cause: err },
          );
        }
        throw err;
      }
      return 'started';
    },
    async stop() {
      return stopProcess(pidFile, markers, 30_000);
    },
    async status(): Promise<ServiceStatus> {
      const pid = runningPid();
      return {
        name: 'kafka',
        address,
        running: pid !== undefined,
        answering: pid === undefined ? false : await answering(),
        pid,
        logFile,
      };
    },
  };
}
