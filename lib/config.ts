/**
 * Configuration: one zod schema per deployable, built from the shared fragments below (STYLE.md: Config,
 * after langfuse `env.ts`). Parsed once in `main`; every problem is reported at once (OpenMeter `Validate()`
 * with `errors.Join`). Each setting has a one-line comment; `describeSettings()` turns them into the README
 * table and `tokenledger config check` output. No switch skips validation.
 */
import path from 'node:path';
import { z } from 'zod';
import { TokenledgerError } from './errors';

/** Repository root: lib/ sits one level below it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

const booleanish = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(1).max(65535);

const brokerList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b.length > 0),
  )
  .refine((list) => list.length > 0, 'must name at least one broker, e.g. 127.0.0.1:9092')
  .refine(
    (list) => list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)),
    'every broker must be host:port, e.g. 127.0.0.1:9092,127.0.0.1:9094',
  );

/** A setting: the env variable that sets it, its zod type, and the one-line meaning shown to users. */
interface Setting {
  readonly env: string;
  readonly schema: z.ZodType;
  readonly doc: string;
  readonly secret?: boolean;
}

const setting = (env: string, schema: z.ZodType, doc: string, secret = false): Setting => ({
  env,
  schema,
  doc,
  secret,
});

/** Every setting the project reads, by fragment. Deployables pick the fragments they need. */
export const SETTINGS = {
  kafka: [
    setting(
      'KAFKA_BROKERS',
      brokerList.optional(),
      'Kafka bootstrap servers (host:port,...). Unset: the local broker.',
    ),
    setting('KAFKA_CLIENT_ID', z.string().min(1).default('tokenledger'), 'client.id sent to Kafka.'),
    setting('KAFKA_SSL', booleanish.default(false), 'Use TLS to talk to Kafka.'),
    setting(
      'KAFKA_SSL_CA_FILE',
      z.string().min(1).optional(),
      'PEM file with the CA that signed the brokers.',
    ),
    setting('KAFKA_SSL_CERT_FILE', z.string().min(1).optional(), 'PEM client certificate for mutual TLS.'),
    setting('KAFKA_SSL_KEY_FILE', z.string().min(1).optional(), 'PEM private key for mutual TLS.', true),
    setting(
      'KAFKA_SSL_REJECT_UNAUTHORIZED',
      booleanish.default(true),
      'Reject brokers whose certificate fails verification.',
    ),
    setting(
      'KAFKA_SASL_MECHANISM',
      z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
      'SASL mechanism; set it together with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.',
    ),
    setting('KAFKA_SASL_USERNAME', z.string().min(1).optional(), 'SASL user name.'),
    setting('KAFKA_SASL_PASSWORD', z.string().min(1).optional(), 'SASL password.', true),
    setting(
      'KAFKA_CONNECTION_TIMEOUT_MS',
      z.coerce.number().int().positive().default(3000),
      'Kafka connect timeout.',
    ),
    setting(
      'KAFKA_REQUEST_TIMEOUT_MS',
      z.coerce.number().int().positive().default(30000),
      'Kafka request timeout.',
    ),
  ],
  clickhouse: [
    setting(
      'CLICKHOUSE_URL',
      z.url({ protocol: /^https?$/ }).optional(),
      'ClickHouse HTTP(S) URL, may carry user:password@ and /database. Unset: the local endpoint.',
    ),
    setting(
      'CLICKHOUSE_USER',
      z.string().min(1).optional(),
      'ClickHouse user (default: from the URL, else "default").',
    ),
    setting(
      'CLICKHOUSE_PASSWORD',
      z.string().optional(),
      'ClickHouse password (default: from the URL, else empty).',
      true,
    ),
    setting(
      'CLICKHOUSE_DATABASE',
      z.string().regex(/^\w+$/).optional(),
      'Database (default: from the URL path, else "tokenledger").',
    ),
    setting(
      'CLICKHOUSE_REQUEST_TIMEOUT_MS',
      z.coerce.number().int().positive().default(30000),
      'Per-request timeout.',
    ),
    setting(
      'CLICKHOUSE_MAX_OPEN_CONNECTIONS',
      z.coerce.number().int().positive().default(10),
      'HTTP sockets per client.',
    ),
  ],
  local: [
    setting(
      'TOKENLEDGER_HOME',
      z.string().min(1).optional(),
      'Folder for local state: broker and ClickHouse data, logs, pid files (default .tokenledger/).',
    ),
    setting('TOKENLEDGER_KAFKA_PORT', port.default(9092), 'Port of the local Kafka broker on 127.0.0.1.'),
    setting(
      'TOKENLEDGER_KAFKA_CONTROLLER_PORT',
      port.optional(),
      'KRaft controller port of the local broker (default: Kafka port + 1).',
    ),
    setting(
      'TOKENLEDGER_KAFKA_HEAP_MB',
      z.coerce.number().int().min(128).max(1024).default(512),
      'JVM heap of the local broker, MB (at most 1024).',
    ),
    setting(
      'TOKENLEDGER_CLICKHOUSE_PORT',
      port.default(8123),
      'Port of the local ClickHouse HTTP endpoint on 127.0.0.1.',
    ),
    setting(
      'TOKENLEDGER_INFRA_START_TIMEOUT_MS',
      z.coerce.number().int().positive().default(90000),
      'How long `infra up` waits for each service to answer.',
    ),
    setting(
      'JAVA_HOME',
      z.string().min(1).optional(),
      'Java 17+ used for the local broker (default: `java` on PATH).',
    ),
  ],
  ingest: [
    setting(
      'INGEST_TOPIC',
      z.string().min(1).default('tokenledger.usage.v1'),
      'Topic the ingest consumer reads usage events from.',
    ),
    setting(
      'INGEST_GROUP_ID',
      z.string().min(1).default('tokenledger-ingest'),
      'Consumer group of the ingest consumers (all replicas share it).',
    ),
    setting(
      'INGEST_DLQ_TOPIC',
      z.string().min(1).default('tokenledger.usage.dlq.v1'),
      'Dead-letter topic: refused messages with their reason.',
    ),
    setting(
      'INGEST_BATCH_MAX_ROWS',
      z.coerce.number().int().min(1).max(1_000_000).default(50_000),
      'Most rows per ClickHouse insert (one insert per partition batch, split above this).',
    ),
    setting(
      'INGEST_BATCH_MAX_WAIT_MS',
      z.coerce.number().int().min(0).max(60_000).default(500),
      'How long a fetch waits for data to gather into a bigger batch (freshness vs insert count).',
    ),
    setting(
      'INGEST_DEDUPE_HORIZON_MS',
      z.coerce.number().int().min(0).default(600_000),
      'Repeats of an event_id are dropped from memory within this span of occurred_at; older ones are looked up in ClickHouse.',
    ),
    setting(
      'INGEST_PARTITIONS_CONCURRENTLY',
      z.coerce.number().int().min(1).max(64).default(3),
      'Partitions processed (and inserted) at the same time by one consumer.',
    ),
    setting(
      'INGEST_CONSUMERS',
      z.coerce.number().int().min(1).max(16).default(2),
      'Consumer-group members one ingest process runs: one converts while another waits for ClickHouse.',
    ),
    setting(
      'INGEST_SESSION_TIMEOUT_MS',
      z.coerce.number().int().min(6000).max(300_000).default(30_000),
      'Consumer-group session timeout: how long a crashed consumer holds its partitions.',
    ),
    setting(
      'INGEST_HTTP_PORT',
      z.coerce.number().int().min(0).max(65535).default(9464),
      'Port of /metrics, /healthz and /readyz (0: a free port; the log says which).',
    ),
    setting(
      'PRICES_OVERRIDES_FILE',
      z.string().min(1).optional(),
      'JSON file of negotiated or internal prices merged over the catalog.',
    ),
  ],
  detect: [
    setting(
      'DETECT_TOPIC',
      z.string().min(1).default('tokenledger.usage.v1'),
      'Topic the detector reads usage events from (its own consumer group).',
    ),
    setting(
      'DETECT_GROUP_ID',
      z.string().min(1).default('tokenledger-detect'),
      'Consumer group of the detectors (replicas share the partitions).',
    ),
    setting(
      'DETECT_ALERTS_TOPIC',
      z.string().min(1).default('tokenledger.alerts.v1'),
      'Topic alerts are published on (key team_id), also recorded in the ClickHouse table alerts.',
    ),
    setting(
      'DETECT_ALLOWED_LATENESS_MS',
      z.coerce.number().int().min(0).max(3_600_000).default(30_000),
      'How long after a minute ends its late events still count in it; later ones count for budgets only.',
    ),
    setting(
      'DETECT_IDLE_ADVANCE_MS',
      z.coerce.number().int().min(1000).default(60_000),
      'With no events for this long, the event-time watermark follows the wall clock (spikes can end).',
    ),
    setting(
      'DETECT_BUDGET_RELOAD_MS',
      z.coerce.number().int().min(1000).default(30_000),
      'How often budgets are re-read from ClickHouse.',
    ),
    setting(
      'DETECT_HTTP_PORT',
      z.coerce.number().int().min(0).max(65535).default(9465),
      'Port of the detector /metrics, /healthz and /readyz (0: a free port; the log says which).',
    ),
  ],
  log: [
    setting(
      'LOG_LEVEL',
      z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      'pino log level.',
    ),
  ],
} as const satisfies Record<string, readonly Setting[]>;

export type Fragment = keyof typeof SETTINGS;

export interface KafkaConfig {
  /** undefined: use the local broker. */
  readonly brokers: readonly string[] | undefined;
  readonly clientId: string;
  readonly ssl:
    | false
    | {
        readonly caFile?: string;
        readonly certFile?: string;
        readonly keyFile?: string;
        readonly rejectUnauthorized: boolean;
      };
  readonly sasl:
    | undefined
    | {
        readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
        readonly username: string;
        readonly password: string;
      };
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export interface ClickHouseConfig {
  /** undefined: use the local endpoint. */
  readonly url: string | undefined;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly requestTimeoutMs: number;
  readonly maxOpenConnections: number;
}

export interface LocalInfraConfig {
  readonly home: string;
  readonly kafkaPort: number;
  readonly kafkaControllerPort: number;
  readonly kafkaHeapMb: number;
  readonly clickhousePort: number;
  readonly startTimeoutMs: number;
  readonly javaHome: string | undefined;
}

export interface IngestConfig {
  readonly topic: string;
  readonly groupId: string;
  readonly dlqTopic: string;
  readonly batchMaxRows: number;
  readonly batchMaxWaitMs: number;
  readonly dedupeHorizonMs: number;
  readonly partitionsConcurrently: number;
  readonly consumers: number;
  readonly sessionTimeoutMs: number;
  readonly httpPort: number;
  readonly pricesOverridesFile: string | undefined;
}

export interface DetectConfig {
  readonly topic: string;
  readonly groupId: string;
  readonly alertsTopic: string;
  readonly allowedLatenessMs: number;
  readonly idleAdvanceMs: number;
  readonly budgetReloadMs: number;
  readonly httpPort: number;
}

export interface Config {
  readonly kafka: KafkaConfig;
  readonly ingest: IngestConfig;
  readonly detect: DetectConfig;
  readonly clickhouse: ClickHouseConfig;
  readonly local: LocalInfraConfig;
  readonly logLevel: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** How a value is shown in an error: secrets never, and never the password inside a URL. */
function shown(s: Setting, raw: string | undefined): string {
  if (s.secret === true) return '<redacted>';
  return JSON.stringify(raw?.replace(/(\/\/[^/@:]*:)[^/@]*@/, '$1<redacted>@'));
}

/**
 * Validates the settings of the given fragments (default: all) and reports every problem in one error. A
 * deployable passes the fragments it uses, so a bad setting it does not read cannot stop it (the ClickHouse
 * endpoint does not care about Kafka SASL). Settings of other fragments take their defaults.
 */
export function loadConfig(
  env: Env = process.env,
  fragments: readonly Fragment[] = Object.keys(SETTINGS) as Fragment[],
): Config {
  const problems: string[] = [];
  const values = new Map<string, unknown>();
  for (const [name, fragment] of Object.entries(SETTINGS) as [Fragment, readonly Setting[]][]) {
    const used = fragments.includes(name);
    for (const s of fragment) {
      const raw = used ? env[s.env] : undefined;
      const parsed = s.schema.safeParse(raw === '' && s.env !== 'CLICKHOUSE_PASSWORD' ? undefined : raw);
      if (parsed.success) {
        values.set(s.env, parsed.data);
      } else {
        problems.push(`${s.env}=${shown(s, raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      }
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- each fragment's schema fixed the type
  const get = <T>(name: string): T => values.get(name) as T;

  const saslMechanism = get<'plain' | 'scram-sha-256' | 'scram-sha-512' | undefined>('KAFKA_SASL_MECHANISM');
  const saslUser = get<string | undefined>('KAFKA_SASL_USERNAME');
  const saslPassword = get<string | undefined>('KAFKA_SASL_PASSWORD');
  if (saslMechanism !== undefined && (saslUser === undefined || saslPassword === undefined)) {
    problems.push(
      'KAFKA_SASL_MECHANISM is set: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are both required',
    );
  }
  if (saslMechanism === undefined && (saslUser !== undefined || saslPassword !== undefined)) {
    problems.push('KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set but KAFKA_SASL_MECHANISM is not');
  }
  const certFile = get<string | undefined>('KAFKA_SSL_CERT_FILE');
  const keyFile = get<string | undefined>('KAFKA_SSL_KEY_FILE');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE must be set together');
  }

  const kafkaPort = get<number>('TOKENLEDGER_KAFKA_PORT');
  const controllerPort = get<number | undefined>('TOKENLEDGER_KAFKA_CONTROLLER_PORT') ?? kafkaPort + 1;
  const clickhousePort = get<number>('TOKENLEDGER_CLICKHOUSE_PORT');
  if (problems.length === 0) {
    const ports = [kafkaPort, controllerPort, clickhousePort];
    if (new Set(ports).size !== ports.length) {
      problems.push(
        `TOKENLEDGER_KAFKA_PORT=${kafkaPort}, TOKENLEDGER_KAFKA_CONTROLLER_PORT=${controllerPort} and TOKENLEDGER_CLICKHOUSE_PORT=${clickhousePort} must all differ`,
      );
    }
  }

  let urlUser: string | undefined;
  let urlPassword: string | undefined;
  let urlDatabase: string | undefined;
  let cleanUrl: string | undefined;
  const rawUrl = get<string | undefined>('CLICKHOUSE_URL');
  if (rawUrl !== undefined) {
    const u = new URL(rawUrl);
    try {
      urlUser = u.username === '' ? undefined : decodeURIComponent(u.username);
      urlPassword = u.password === '' ? undefined : decodeURIComponent(u.password);
    } catch {
      problems.push('CLICKHOUSE_URL: the user or password in it is not valid percent-encoding');
    }
    const db = u.pathname.replace(/^\/+|\/+$/g, '');
    urlDatabase = db === '' ? undefined : db;
    if (urlDatabase !== undefined && !/^\w+$/.test(urlDatabase)) {
      problems.push(
        `CLICKHOUSE_URL: database ${JSON.stringify(urlDatabase)} in its path must be letters, digits and _`,
      );
    }
    u.username = '';
    u.password = '';
    u.pathname = '/';
    cleanUrl = u.toString();
  }

  if (problems.length > 0) {
    throw new TokenledgerError(
      'CONFIG_INVALID',
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`,
    );
  }

  const sslEnabled = get<boolean>('KAFKA_SSL');
  return {
    kafka: {
      brokers: get<string[] | undefined>('KAFKA_BROKERS'),
      clientId: get<string>('KAFKA_CLIENT_ID'),
      ssl: sslEnabled
        ? {
            rejectUnauthorized: get<boolean>('KAFKA_SSL_REJECT_UNAUTHORIZED'),
            ...optional('caFile', get<string | undefined>('KAFKA_SSL_CA_FILE')),
            ...optional('certFile', certFile),
            ...optional('keyFile', keyFile),
          }
        : false,
      sasl:
        saslMechanism !== undefined && saslUser !== undefined && saslPassword !== undefined
          ? { mechanism: saslMechanism, username: saslUser, password: saslPassword }
          : undefined,
      connectionTimeoutMs: get<number>('KAFKA_CONNECTION_TIMEOUT_MS'),
      requestTimeoutMs: get<number>('KAFKA_REQUEST_TIMEOUT_MS'),
    },
    clickhouse: {
      url: cleanUrl,
      user: get<string | undefined>('CLICKHOUSE_USER') ?? urlUser ?? 'default',
      password: get<string | undefined>('CLICKHOUSE_PASSWORD') ?? urlPassword ?? '',
      database: get<string | undefined>('CLICKHOUSE_DATABASE') ?? urlDatabase ?? 'tokenledger',
      requestTimeoutMs: get<number>('CLICKHOUSE_REQUEST_TIMEOUT_MS'),
      maxOpenConnections: get<number>('CLICKHOUSE_MAX_OPEN_CONNECTIONS'),
    },
    local: {
      home: path.resolve(
        get<string | undefined>('TOKENLEDGER_HOME') ?? path.join(PROJECT_ROOT, '.tokenledger'),
      ),
      kafkaPort,
      kafkaControllerPort: controllerPort,
      kafkaHeapMb: get<number>('TOKENLEDGER_KAFKA_HEAP_MB'),
      clickhousePort,
      startTimeoutMs: get<number>('TOKENLEDGER_INFRA_START_TIMEOUT_MS'),
      javaHome: get<string | undefined>('JAVA_HOME'),
    },
    ingest: {
      topic: get<string>('INGEST_TOPIC'),
      groupId: get<string>('INGEST_GROUP_ID'),
      dlqTopic: get<string>('INGEST_DLQ_TOPIC'),
      batchMaxRows: get<number>('INGEST_BATCH_MAX_ROWS'),
      batchMaxWaitMs: get<number>('INGEST_BATCH_MAX_WAIT_MS'),
      dedupeHorizonMs: get<number>('INGEST_DEDUPE_HORIZON_MS'),
      partitionsConcurrently: get<number>('INGEST_PARTITIONS_CONCURRENTLY'),
      consumers: get<number>('INGEST_CONSUMERS'),
      sessionTimeoutMs: get<number>('INGEST_SESSION_TIMEOUT_MS'),
      httpPort: get<number>('INGEST_HTTP_PORT'),
      pricesOverridesFile: get<string | undefined>('PRICES_OVERRIDES_FILE'),
    },
    detect: {
      topic: get<string>('DETECT_TOPIC'),
      groupId: get<string>('DETECT_GROUP_ID'),
      alertsTopic: get<string>('DETECT_ALERTS_TOPIC'),
      allowedLatenessMs: get<number>('DETECT_ALLOWED_LATENESS_MS'),
      idleAdvanceMs: get<number>('DETECT_IDLE_ADVANCE_MS'),
      budgetReloadMs: get<number>('DETECT_BUDGET_RELOAD_MS'),
      httpPort: get<number>('DETECT_HTTP_PORT'),
    },
    logLevel: get<string>('LOG_LEVEL'),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** The brokers to use: the configured cluster, else the local broker. */
export function kafkaBrokers(config: Config): readonly string[] {
  return config.kafka.brokers ?? [`127.0.0.1:${config.local.kafkaPort}`];
}

/** The ClickHouse URL to use: the configured server, else the local endpoint. */
export function clickhouseUrl(config: Config): string {
  return config.clickhouse.url ?? `http://127.0.0.1:${config.local.clickhousePort}/`;
}

/** A printable view of the configuration with every secret replaced by `<redacted>`. */
export function redactedConfig(config: Config): unknown {
  return {
    kafka: {
      ...config.kafka,
      brokers: kafkaBrokers(config),
      local: config.kafka.brokers === undefined,
      sasl: config.kafka.sasl === undefined ? undefined : { ...config.kafka.sasl, password: '<redacted>' },
      ssl:
        config.kafka.ssl === false
          ? false
          : {
              ...config.kafka.ssl,
              ...(config.kafka.ssl.keyFile === undefined ? {} : { keyFile: '<redacted>' }),
            },
    },
    clickhouse: {
      ...config.clickhouse,
      url: clickhouseUrl(config),
      local: config.clickhouse.url === undefined,
      password: config.clickhouse.password === '' ? '' : '<redacted>',
    },
    local: config.local,
    logLevel: config.logLevel,
  };
}

/** Every setting with its default and meaning, for `tokenledger config check --list` and the README. */
export function describeSettings(): { env: string; fragment: string; doc: string; secret: boolean }[] {
  return Object.entries(SETTINGS).flatMap(([fragment, list]) =>
    list.map((s: Setting) => ({ env: s.env, fragment, doc: s.doc, secret: s.secret === true })),
  );
}
