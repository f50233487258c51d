/**
 * infra/docker-compose.yml and the Grafana files it mounts, read as files (no Docker engine here, none needed):
 * the services and their pinned images, healthchecks, ports on 127.0.0.1, named volumes, the settings the
 * tokenledger containers get (validated by the real config loader), the provisioned ClickHouse data source,
 * and the dashboard JSON (every panel queries that data source, only objects the migrations create, only
 * variables the dashboard defines). Whether each query runs: tests/integration/grafana-dashboard.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT, loadConfig } from '../../lib/config';
import { MIGRATIONS_DIR } from '../../migrations/runner';
import { DEPLOYED_NODE_OPTIONS } from '../../bench/ingest';

const INFRA = path.join(PROJECT_ROOT, 'infra');
const readYaml = (file: string): unknown => parse(fs.readFileSync(file, 'utf8'), { merge: true });

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string | string[] };
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = readYaml(path.join(INFRA, 'docker-compose.yml')) as Compose;
const services = compose.services;
const service = (name: string): Service => {
  const s = services[name];
  if (s === undefined) throw new Error(`infra/docker-compose.yml has no service ${name}`);
  return s;
};
const APP = ['migrate', 'ingest', 'detect'];
const THIRD_PARTY = ['kafka', 'clickhouse', 'grafana'];

/** Compose's interpolation for what the file uses: ${NAME:-default} takes the default (NAME unset here). */
function interpolate(value: string | number | boolean): string {
  return String(value).replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (whole, _name: string, fallback?: string) => {
    if (fallback === undefined) throw new Error(`${whole} has no default: the file must work without a .env`);
    return fallback;
  });
}
const env = (s: Service): Record<string, string> =>
  Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));

describe('infra/docker-compose.yml', () => {
  test('has Kafka, ClickHouse, Grafana, the one-shot migration, ingest and detect', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['clickhouse', 'detect', 'grafana', 'ingest', 'kafka', 'migrate'].sort(),
    );
  });

  test('ingest runs with the V8 heap limit bench:ingest measures as deployed', () => {
    expect(env(service('ingest')).NODE_OPTIONS).toBe(DEPLOYED_NODE_OPTIONS);
  });

  test('third-party images are official and pinned to a version (no latest, no floating tag)', () => {
    const images = Object.fromEntries(THIRD_PARTY.map((n) => [n, service(n).image ?? '']));
    expect(images.kafka).toMatch(/^apache\/kafka:\d+\.\d+\.\d+$/);
    expect(images.clickhouse).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+\.\d+\.\d+$/);
    expect(images.grafana).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    for (const [name, s] of Object.entries(services)) {
      expect(`${name} ${s.image ?? ''}`).not.toMatch(/:latest$|^\S+ [^:]+$/);
    }
  });

  test("Kafka is the project's Kafka (infra/kafka/pom.xml) and ClickHouse is 24.8 or newer", () => {
    const pom = fs.readFileSync(path.join(INFRA, 'kafka', 'pom.xml'), 'utf8');
    const kafkaVersion = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
    expect(service('kafka').image).toBe(`apache/kafka:${kafkaVersion ?? '?'}`);
    const [major = 0, minor = 0] =
      (service('clickhouse').image ?? '').split(':')[1]?.split('.').map(Number) ?? [];
    expect(major * 100 + minor).toBeGreaterThanOrEqual(2408);
  });

  test('the tokenledger services are built from infra/Dockerfile with the repository as context', () => {
    for (const name of APP) {
      const s = service(name);
      expect(s.build).toEqual({ context: '..', dockerfile: 'infra/Dockerfile' });
      expect(s.image).toBe('tokenledger:local');
    }
    expect(fs.existsSync(path.join(INFRA, 'Dockerfile'))).toBe(true);
    const dockerfile = fs.readFileSync(path.join(INFRA, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:\d+\.\d+-\S+$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "cli\/bin\.js"\]$/m);
    // Every folder the image copies exists (a renamed folder would break the build only on a Docker machine).
    const sources = [...dockerfile.matchAll(/^COPY (?!--)(.+)$/gm)].flatMap((m) =>
      (m[1] ?? '').split(' ').slice(0, -1),
    );
    expect(sources).toContain('migrations');
    for (const source of sources.filter((s) => !s.includes('*'))) {
      expect(fs.existsSync(path.join(PROJECT_ROOT, source)) ? source : `missing: ${source}`).toBe(source);
    }
  });

  test('migrate runs `migrate up` once; ingest and detect start after it succeeded', () => {
    expect(service('migrate').command).toEqual(['migrate', 'up']);
    expect(service('migrate').depends_on?.clickhouse?.condition).toBe('service_healthy');
    for (const name of ['ingest', 'detect']) {
      const s = service(name);
      expect(s.command).toEqual([name]);
      expect(s.depends_on).toEqual({
        kafka: { condition: 'service_healthy' },
        clickhouse: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
  });

  test('every long-running service has a healthcheck', () => {
    for (const name of [...THIRD_PARTY, 'ingest', 'detect']) {
      const test = service(name).healthcheck?.test;
      expect(`${name}: ${Array.isArray(test) ? test.join(' ') : (test ?? 'none')}`).toMatch(/^\w+: CMD/);
    }
    // ingest and detect answer on the port their settings name.
    for (const [name, setting] of [
      ['ingest', 'INGEST_HTTP_PORT'],
      ['detect', 'DETECT_HTTP_PORT'],
    ] as const) {
      const port = env(service(name))[setting];
      expect(String(service(name).healthcheck?.test)).toContain(`127.0.0.1:${port ?? '?'}/readyz`);
    }
  });

  test('every published port is on 127.0.0.1', () => {
    const ports = Object.values(services).flatMap((s) => s.ports ?? []);
    expect(ports.length).toBeGreaterThanOrEqual(3);
    for (const p of ports) expect(interpolate(p)).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  test('data lives in named volumes; bind mounts name files of the repository', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const name of THIRD_PARTY) {
      const mounts = service(name).volumes ?? [];
      const named = mounts.filter((v) => !/^[./]/.test(v)).map((v) => v.split(':')[0]);
      expect(named.length).toBeGreaterThan(0);
      for (const v of named) expect(declared).toContain(v);
      for (const v of mounts.filter((m) => m.startsWith('./'))) {
        expect(fs.existsSync(path.join(INFRA, v.split(':')[0] ?? ''))).toBe(true);
      }
    }
  });

  test('the tokenledger containers get settings the config loader accepts, naming the compose services', () => {
    const kafkaEnv = env(service('kafka'));
    for (const name of APP) {
      const e = env(service(name));
      const config = loadConfig(e, ['kafka', 'clickhouse', 'local', 'ingest', 'detect', 'log']);
      expect(config.kafka.brokers).toEqual(['kafka:19092']);
      expect(kafkaEnv.KAFKA_ADVERTISED_LISTENERS).toContain('//kafka:19092');
      expect(new URL(e.CLICKHOUSE_URL ?? '').host).toBe('clickhouse:8123');
      expect(config.clickhouse.database).toBe(env(service('clickhouse')).CLICKHOUSE_DB);
      expect(config.clickhouse.user).toBe(env(service('clickhouse')).CLICKHOUSE_USER);
      expect(config.clickhouse.password).toBe(env(service('clickhouse')).CLICKHOUSE_PASSWORD);
    }
    // KRaft, one node, topics only as the project creates them.
    expect(kafkaEnv.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(kafkaEnv.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
    expect(kafkaEnv.KAFKA_ADVERTISED_LISTENERS).toMatch(/\/\/127\.0\.0\.1:\d+/);
  });

  test('Grafana installs the pinned ClickHouse plugin and mounts the provisioning and the dashboards', () => {
    const g = service('grafana');
    const e = env(g);
    expect(e.GF_PLUGINS_PREINSTALL_SYNC).toMatch(/^grafana-clickhouse-datasource@\d+\.\d+\.\d+$/);
    expect(g.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro');
    const dashboards = (g.volumes ?? []).find((v) => v.startsWith('./grafana/dashboards:'))?.split(':')[1];
    const providers = readYaml(
      path.join(INFRA, 'grafana', 'provisioning', 'dashboards', 'dashboards.yml'),
    ) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(providers.providers.map((p) => [p.type, p.options.path])).toEqual([['file', dashboards]]);
    expect(e.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${dashboards ?? '?'}/tokenledger.json`);
    expect(service('grafana').depends_on?.clickhouse?.condition).toBe('service_healthy');
  });
});

// ---------------------------------------------------------------------------------------------------------

interface Datasource {
  name: string;
  uid: string;
  type: string;
  jsonData: Record<string, unknown>;
  secureJsonData?: Record<string, string>;
}
const datasources = (
  readYaml(path.join(INFRA, 'grafana', 'provisioning', 'datasources', 'clickhouse.yml')) as {
    datasources: Datasource[];
  }
).datasources;

describe('the provisioned ClickHouse data source', () => {
  test('is the official plugin over HTTP to the clickhouse service, database tokenledger', () => {
    expect(datasources).toHaveLength(1);
    const [ds] = datasources as [Datasource];
    expect(ds.type).toBe('grafana-clickhouse-datasource');
    expect(ds.jsonData).toMatchObject({ host: 'clickhouse', port: 8123, protocol: 'http', secure: false });
    expect(Object.keys(services)).toContain(ds.jsonData.host);
    const ch = env(service('clickhouse'));
    expect(ds.jsonData.defaultDatabase).toBe(ch.CLICKHOUSE_DB);
    expect(ds.jsonData.username).toBe(ch.CLICKHOUSE_USER);
    // The password is not in the file: Grafana expands it from the grafana service's environment.
    expect(ds.secureJsonData?.password).toBe('$CLICKHOUSE_PASSWORD');
    expect(env(service('grafana')).CLICKHOUSE_PASSWORD).toBe(ch.CLICKHOUSE_PASSWORD);
  });
});

// ---------------------------------------------------------------------------------------------------------

interface Target {
  datasource?: { type: string; uid: string };
  editorType?: string;
  format?: number;
  rawSql?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  annotations: { list: { name: string; builtIn?: number; target?: Target }[] };
  templating: { list: { name: string; type: string; query: string; datasource: { uid: string } }[] };
}

const dashboard = JSON.parse(
  fs.readFileSync(path.join(INFRA, 'grafana', 'dashboards', 'tokenledger.json'), 'utf8'),
) as Dashboard;
const allPanels = (panels: readonly Panel[]): Panel[] =>
  panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
const sqls: { label: string; sql: string }[] = [
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ label: p.title, sql: t.rawSql ?? '' }))),
  ...dashboard.annotations.list
    .filter((a) => a.builtIn !== 1)
    .map((a) => ({ label: `annotation ${a.name}`, sql: a.target?.rawSql ?? '' })),
  ...dashboard.templating.list.map((v) => ({ label: `variable ${v.name}`, sql: v.query })),
];

/** Tables and views the migrations create. */
const schemaObjects = new Set(
  fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .flatMap((f) =>
      [
        ...fs
          .readFileSync(path.join(MIGRATIONS_DIR, f), 'utf8')
          .matchAll(/CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS (\w+)/g),
      ].map((m) => m[1] ?? ''),
    ),
);

describe('the dashboard JSON', () => {
  test('parses, has a stable uid and a current schema version', () => {
    expect(dashboard.uid).toBe('tokenledger-spend');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(panels.length).toBeGreaterThanOrEqual(10);
  });

  test('every panel has a SQL target on the provisioned data source', () => {
    const uid = datasources[0]?.uid;
    for (const p of panels) {
      expect(`${p.title}: ${String(p.targets?.length ?? 0)} target(s)`).toMatch(/: [1-9]\d* target/);
      expect(p.datasource?.uid).toBe(uid);
      for (const t of p.targets ?? []) {
        expect(t.datasource).toEqual({ type: 'grafana-clickhouse-datasource', uid });
        expect(t.editorType).toBe('sql');
        expect(t.rawSql).toMatch(/^\s*SELECT\b/);
        // 0: time series (the plugin turns long results wide), 1: table.
        expect(t.format).toBe(p.type === 'timeseries' ? 0 : 1);
        if (p.type === 'timeseries') expect(t.rawSql).toMatch(/\bAS time\b/);
      }
    }
    for (const v of dashboard.templating.list) expect(v.datasource.uid).toBe(uid);
  });

  test('panel ids are unique and the layout fits 24 columns', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
  });

  test('queries read only what the migrations create, rollups without FINAL, money not as Float', () => {
    for (const { label, sql } of sqls) {
      const objects = [...sql.matchAll(/\b(?:FROM|JOIN)\s+(\w+)/gi)].map((m) => m[1] ?? '');
      expect(objects.length).toBeGreaterThan(0);
      for (const o of objects)
        expect(`${label}: ${o}`).toBe(`${label}: ${schemaObjects.has(o) ? o : '(no such table)'}`);
      // README: sum the rollups with plain sum(), never FINAL.
      expect(`${label}: ${sql}`).not.toMatch(/\bFINAL\b/);
      expect(`${label}: ${sql}`).not.toMatch(/cost_nanousd\s*\/|toFloat\d*\(\s*\w*cost/i);
    }
  });

  test('only variables the dashboard defines, and Grafana macros the ClickHouse plugin has', () => {
    const variables = new Set(dashboard.templating.list.map((v) => v.name));
    const macros = new Set([
      'conditionalAll',
      'timeFilter',
      'timeFilter_ms',
      'dateFilter',
      'dateTimeFilter',
      'dt',
      'fromTime',
      'toTime',
      'fromTime_ms',
      'toTime_ms',
      'timeInterval',
      'timeInterval_ms',
      'interval_s',
    ]);
    for (const { label, sql } of sqls) {
      for (const m of sql.matchAll(/\$__(\w+)|\$\{(\w+)(?::\w+)?\}|\$(\w+)/g)) {
        if (m[1] !== undefined)
          expect(`${label}: $__${m[1]}`).toBe(`${label}: $__${macros.has(m[1]) ? m[1] : '?'}`);
        const name = m[2] ?? m[3];
        if (name !== undefined) expect(variables).toContain(name);
      }
    }
  });
});
