/**
 * Every feature of ClickHouse's HTTP interface that @clickhouse/client and HTTP-speaking BI tools use, through
 * the real client and once more as a raw HTTP request checked against ClickHouse's documented behaviour
 * (https://clickhouse.com/docs/interfaces/http). Runs against the local endpoint, or a real server when
 * CLICKHOUSE_URL is set: the assertions are the same.
 */
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { ClickHouseError, ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseUrl } from '../../lib/config';
import { useTestDatabase } from '../helpers/clickhouse';
import { uniqueName } from '../helpers/env';

const db = useTestDatabase();
const base = clickhouseUrl(db.config).replace(/\/$/, '');
const auth = `Basic ${Buffer.from(`${db.config.clickhouse.user}:${db.config.clickhouse.password}`).toString('base64')}`;

async function raw(
  pathAndQuery: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${base}${pathAndQuery}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { Authorization: auth, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

function client(extra: Parameters<typeof createClient>[0] = {}): ClickHouseClient {
  const c = createClient({
    url: base,
    username: db.config.clickhouse.user,
    password: db.config.clickhouse.password,
    database: db.name,
    // These tests provoke errors on purpose; the client would print each one to the console.
    log: { level: ClickHouseLogLevel.OFF },
    ...extra,
    // Newer servers (and the 26.x engine) default to unquoted 64-bit integers in JSON; pin the choice so the
    // expected values below hold on every server version. lib/clickhouse.ts pins it the same way.
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1, ...extra.clickhouse_settings },
  });
  clients.push(c);
  return c;
}
const clients: ClickHouseClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

/**
 * Starts a query whose rows arrive one block at a time, half a second apart, and resolves once its response
 * has started: from then on the query is provably running on the server. `rest` is the remaining body.
 */
async function startSlowStream(search = ''): Promise<{ status: number; rest: Promise<string> }> {
  const res = await fetch(`${base}/?max_block_size=1${search}`, {
    method: 'POST',
    headers: { Authorization: auth },
    body: 'SELECT number, sleepEachRow(0.5) FROM numbers(5)',
  });
  return { status: res.status, rest: res.text() };
}

async function rejection(p: Promise<unknown>): Promise<ClickHouseError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ClickHouseError) return err;
    throw err;
  }
  throw new Error('expected the request to fail');
}

describe('ping', () => {
  test('client.ping() succeeds', async () => {
    expect(await client().ping()).toEqual({ success: true });
  });
  test('raw: GET /ping answers 200 "Ok.\\n"', async () => {
    const r = await raw('/ping');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('Ok.\n');
  });
});

describe('queries in the body or the query parameter', () => {
  test('client.query()', async () => {
    const rs = await client().query({ query: 'SELECT 1 + 1 AS two', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ two: 2 }]);
  });
  test('raw: POST body, GET ?query=, POST ?query= with body appended after a newline', async () => {
    expect((await raw('/', { body: 'SELECT 40 + 2' })).body.toString()).toBe('42\n');
    expect((await raw(`/?query=${encodeURIComponent('SELECT 7')}`)).body.toString()).toBe('7\n');
    // ClickHouse concatenates the query parameter, a newline and the body.
    const r = await raw(`/?query=${encodeURIComponent('SELECT 1 +')}`, { body: '2' });
    expect(r.body.toString()).toBe('3\n');
  });
  test('raw: the default output format is TabSeparated; default_format and X-ClickHouse-Format', async () => {
    const plain = await raw('/', { body: "SELECT 1 AS a, 'x\\ty' AS b" });
    expect(plain.body.toString()).toBe('1\tx\\ty\n');
    expect(plain.headers.get('x-clickhouse-format')).toBe('TabSeparated');
    const json = await raw('/?default_format=JSONEachRow', { body: 'SELECT 1 AS a' });
    expect(json.body.toString()).toBe('{"a":1}\n');
    expect(json.headers.get('x-clickhouse-format')).toBe('JSONEachRow');
    const explicit = await raw('/?default_format=JSONEachRow', { body: 'SELECT 1 AS a FORMAT CSV' });
    expect(explicit.body.toString()).toBe('1\n');
    expect(explicit.headers.get('x-clickhouse-format')).toBe('CSV');
    expect(plain.headers.get('x-clickhouse-query-id')).toMatch(/.+/);
    expect(plain.headers.get('x-clickhouse-summary')).toMatch(/"read_rows"/);
  });
  test('raw: GET is read-only, as on a server', async () => {
    const r = await raw(`/?query=${encodeURIComponent('CREATE TABLE nope (x UInt8) ENGINE = Memory')}`);
    expect(r.status).toBe(500);
    expect(r.headers.get('x-clickhouse-exception-code')).toBe('164');
    expect(r.body.toString()).toMatch(/^Code: 164\. DB::Exception: .*readonly/);
  });
});

describe('output formats', () => {
  const q = 'SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 3';
  test.each([
    ['TabSeparated', '0\t0\n1\t1\n2\t2\n'],
    ['CSV', '0,"0"\n1,"1"\n2,"2"\n'],
    ['CSVWithNames', '"n","s"\n0,"0"\n1,"1"\n2,"2"\n'],
    ['JSONEachRow', '{"n":"0","s":"0"}\n{"n":"1","s":"1"}\n{"n":"2","s":"2"}\n'],
    ['JSONCompactEachRow', '["0", "0"]\n["1", "1"]\n["2", "2"]\n'],
  ])('%s through client.query().text()', async (format, expected) => {
    const rs = await client().query({ query: q, format: format as 'CSV' });
    expect(await rs.text()).toBe(expected);
  });
  test('JSON (a single document) parses with meta, data, rows', async () => {
    const rs = await client().query({ query: q, format: 'JSON' });
    const doc = await rs.json<{ n: string; s: string }>();
    expect(doc.rows).toBe(3);
    expect(doc.meta?.map((m) => m.name)).toEqual(['n', 's']);
    expect(doc.data[2]).toEqual({ n: '2', s: '2' });
  });
  test('raw: Parquet is a complete Parquet file; Pretty is text', async () => {
    const pq = await raw('/', { body: `${q} FORMAT Parquet` });
    expect(pq.status).toBe(200);
    expect(pq.body.subarray(0, 4).toString()).toBe('PAR1');
    expect(pq.body.subarray(-4).toString()).toBe('PAR1');
    const pretty = await raw('/', { body: 'SELECT 1 AS one FORMAT PrettyCompactMonoBlock' });
    expect(pretty.body.toString()).toContain('one');
  });
  test('a WithNames format streamed over many engine chunks carries its header once', async () => {
    const rs = await client().query({ query: 'SELECT number FROM numbers(500000)', format: 'CSVWithNames' });
    const lines = (await rs.text()).trimEnd().split('\n');
    expect(lines[0]).toBe('"number"');
    expect(lines.filter((l) => l === '"number"')).toHaveLength(1);
    expect(lines).toHaveLength(500001);
  });
});

describe('inserts with a body', () => {
  const table = uniqueName('ins');
  beforeAll(async () => {
    await client().command({
      query: `CREATE TABLE ${table} (id UInt32, s String) ENGINE = MergeTree ORDER BY id`,
    });
  });
  const count = async (): Promise<number> => {
    const rs = await client().query({ query: `SELECT count() AS c FROM ${table}`, format: 'JSONEachRow' });
    return Number((await rs.json<{ c: string }>())[0]?.c);
  };
  test('client.insert() with JSONEachRow reports written rows', async () => {
    const before = await count();
    const r = await client().insert({
      table,
      values: [
        { id: 1, s: 'a' },
        { id: 2, s: 'b' },
      ],
      format: 'JSONEachRow',
    });
    expect(r.summary?.written_rows).toBe('2');
    expect(await count()).toBe(before + 2);
  });
  test('client.insert() with a gzip-compressed request body', async () => {
    const before = await count();
    const gz = client({ compression: { request: true } });
    await gz.insert({
      table,
      values: Array.from({ length: 1000 }, (_, i) => ({ id: 1000 + i, s: 'gz' })),
      format: 'JSONEachRow',
    });
    expect(await count()).toBe(before + 1000);
  });
  test('raw: INSERT ... FORMAT in the query parameter, data in the body (CSV), and gzip Content-Encoding', async () => {
    const before = await count();
    const q = encodeURIComponent(`INSERT INTO ${db.name}.${table} FORMAT CSV`);
    const r = await raw(`/?query=${q}`, { body: '10,"x"\n11,"y"\n' });
    expect(r.status).toBe(200);
    const gz = await raw(`/?query=${q}`, {
      body: zlib.gzipSync('12,"z"\n'),
      headers: { 'Content-Encoding': 'gzip' },
    });
    expect(gz.status).toBe(200);
    expect(await count()).toBe(before + 3);
  });
  test('raw: the whole INSERT with its data in the body', async () => {
    const before = await count();
    const r = await raw(`/?database=${db.name}`, {
      body: `INSERT INTO ${table} FORMAT TabSeparated\n20\tp\n21\tq\n`,
    });
    expect(r.status).toBe(200);
    expect(await count()).toBe(before + 2);
  });
  test('a bad row is rejected with a parse error and nothing of that insert is written', async () => {
    const before = await count();
    const err = await rejection(
      client().insert({
        table,
        values: [
          { id: 1, s: 'ok' },
          { id: 'not a number', s: 'x' },
        ],
        format: 'JSONEachRow',
      }),
    );
    expect(err.code).toMatch(/^\d+$/);
    expect(await count()).toBe(before);
  });
});

describe('query parameters (param_*)', () => {
  test('client query_params of several types, including strings with tabs, quotes and backslashes', async () => {
    const rs = await client().query({
      query:
        'SELECT {s:String} AS s, {n:UInt64} AS n, {a:Array(String)} AS a, {d:DateTime} AS d, {z:Nullable(String)} AS z',
      query_params: {
        s: "it's\ta \\ test",
        n: '18446744073709551615',
        a: ["x'y", 'z\\w'],
        d: '2024-03-01 12:00:00',
        z: null,
      },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      {
        s: "it's\ta \\ test",
        n: '18446744073709551615',
        a: ["x'y", 'z\\w'],
        d: '2024-03-01 12:00:00',
        z: null,
      },
    ]);
  });
  test('query_params sent as multipart/form-data', async () => {
    const mp = client({ use_multipart_params: true });
    const rs = await mp.query({
      query: 'SELECT {v:String} AS v',
      query_params: { v: 'multi\npart' },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ v: 'multi\npart' }]);
  });
  test('raw: ?param_x= in TSV-escaped form', async () => {
    const r = await raw(`/?param_x=${encodeURIComponent('a\\tb')}&param_y=5`, {
      body: 'SELECT {x:String}, length({x:String}), {y:UInt8} * 2',
    });
    expect(r.body.toString()).toBe('a\\tb\t3\t10\n');
  });
});

describe('settings as URL parameters', () => {
  test('clickhouse_settings apply to that query only', async () => {
    const c = client();
    const q = "SELECT getSetting('max_threads') AS t, getSetting('async_insert') AS ai";
    const withSetting = await c.query({
      query: q,
      format: 'JSONEachRow',
      clickhouse_settings: { max_threads: 3 },
    });
    expect(await withSetting.json()).toEqual([{ t: 3, ai: false }]);
    const without = await c.query({ query: q, format: 'JSONEachRow' });
    const row = (await without.json<{ t: number }>())[0];
    expect(row?.t).not.toBe(3);
  });
  test('raw: ?max_result_rows=2&result_overflow_mode=break limits the result; an unknown setting is refused', async () => {
    const r = await raw('/?max_result_rows=2&result_overflow_mode=break&max_block_size=1', {
      body: 'SELECT number FROM numbers(10)',
    });
    expect(r.body.toString().trimEnd().split('\n').length).toBeLessThan(10);
    const bad = await raw('/?no_such_setting_xyz=1', { body: 'SELECT 1' });
    expect(bad.status).toBe(404);
    expect(bad.headers.get('x-clickhouse-exception-code')).toBe('115');
  });
});

describe('sessions (session_id)', () => {
  test('temporary tables and SET live in their session only', async () => {
    const c = client();
    const session_id = uniqueName('sess');
    await c.command({ query: 'CREATE TEMPORARY TABLE tmp (x UInt8)', session_id });
    await c.command({ query: 'INSERT INTO tmp VALUES (1), (2)', session_id });
    await c.command({ query: 'SET max_threads = 2', session_id });
    const rs = await c.query({
      query: "SELECT count() AS c, getSetting('max_threads') AS t FROM tmp",
      session_id,
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ c: '2', t: 2 }]);
    const other = await rejection(c.query({ query: 'SELECT * FROM tmp', session_id: uniqueName('sess') }));
    expect(other.code).toBe('60');
  });
  test('back-to-back requests on one session never find it locked (the session is put back before the answer)', async () => {
    const c = client();
    const session_id = uniqueName('sess');
    // Each request carries a database and a setting, so the endpoint has to put the session back after it.
    for (let i = 0; i < 60; i++) {
      await c.command({ query: 'SELECT 1', session_id, clickhouse_settings: { max_threads: 3 } });
      const rs = await c.query({ query: 'SELECT 1 AS one', session_id, format: 'JSONEachRow' });
      expect(await rs.json()).toEqual([{ one: 1 }]);
    }
  });
  test('raw: session_check=1 on an unknown session is SESSION_NOT_FOUND', async () => {
    const r = await raw(`/?session_id=${uniqueName('nosuch')}&session_check=1`, { body: 'SELECT 1' });
    expect(r.headers.get('x-clickhouse-exception-code')).toBe('372');
  });
  test('raw: a session used by two requests at once is SESSION_IS_LOCKED for the second', async () => {
    const sid = uniqueName('locked');
    const slow = await startSlowStream(`&session_id=${sid}`);
    expect(slow.status).toBe(200);
    const second = await raw(`/?session_id=${sid}`, { body: 'SELECT 1' });
    expect(second.headers.get('x-clickhouse-exception-code')).toBe('373');
    expect((await slow.rest).trimEnd().split('\n')).toHaveLength(5);
    // released when the first request ended
    expect((await raw(`/?session_id=${sid}`, { body: 'SELECT 1' })).body.toString()).toBe('1\n');
  });
});

describe('database', () => {
  test('client database option resolves unqualified names', async () => {
    const rs = await client().query({ query: 'SELECT currentDatabase() AS d', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ d: db.name }]);
  });
  test('raw: ?database= and an unknown database (UNKNOWN_DATABASE, 404)', async () => {
    expect((await raw(`/?database=${db.name}`, { body: 'SELECT currentDatabase()' })).body.toString()).toBe(
      `${db.name}\n`,
    );
    const r = await raw('/?database=no_such_db_xyz', { body: 'SELECT 1' });
    expect(r.status).toBe(404);
    expect(r.headers.get('x-clickhouse-exception-code')).toBe('81');
  });
});

describe('authentication', () => {
  test('a wrong password is AUTHENTICATION_FAILED through the client', async () => {
    const bad = client({ password: 'wrong-password' });
    const err = await rejection(bad.query({ query: 'SELECT 1' }));
    expect(err.code).toBe('516');
    expect(err.type).toBe('AUTHENTICATION_FAILED');
  });
  test('raw: Basic auth, X-ClickHouse-User/Key headers, and a wrong password (403)', async () => {
    const { user, password } = db.config.clickhouse;
    const viaHeaders = await fetch(`${base}/?query=SELECT%201`, {
      headers: { 'X-ClickHouse-User': user, 'X-ClickHouse-Key': password },
    });
    expect(viaHeaders.status).toBe(200);
    const wrong = await fetch(`${base}/?query=SELECT%201`, {
      headers: { Authorization: `Basic ${Buffer.from(`${user}:nope`).toString('base64')}` },
    });
    expect(wrong.status).toBe(403);
    expect(wrong.headers.get('x-clickhouse-exception-code')).toBe('516');
  });
});

describe('errors in ClickHouse format', () => {
  test('syntax error → ClickHouseError code 62, type SYNTAX_ERROR', async () => {
    const err = await rejection(client().query({ query: 'SELEC 1' }));
    expect(err.code).toBe('62');
    expect(err.type).toBe('SYNTAX_ERROR');
  });
  test('raw: status, X-ClickHouse-Exception-Code header and "Code: N. DB::Exception: ... (NAME)" body', async () => {
    const syntax = await raw('/', { body: 'SELEC 1' });
    expect(syntax.status).toBe(400);
    expect(syntax.headers.get('x-clickhouse-exception-code')).toBe('62');
    expect(syntax.body.toString()).toMatch(/^Code: 62\. DB::Exception: Syntax error.*\(SYNTAX_ERROR\)/s);
    const table = await raw('/', { body: 'SELECT * FROM no_such_table_xyz' });
    expect(table.status).toBe(404);
    expect(table.headers.get('x-clickhouse-exception-code')).toBe('60');
  });
  test('an error after rows were streamed reaches the client as a ClickHouseError', async () => {
    const rs = await client().query({
      query: 'SELECT throwIf(number = 300000) FROM numbers(400000)',
      format: 'JSONEachRow',
    });
    const err = await rejection(
      (async () => {
        for await (const rows of rs.stream()) expect(Array.isArray(rows)).toBe(true);
      })(),
    );
    expect(err.code).toBe('395');
  });
});

describe('streamed results and response compression', () => {
  test('a million rows stream through client.query().stream()', async () => {
    const rs = await client().query({
      query: 'SELECT number FROM numbers(1000000)',
      format: 'JSONCompactEachRow',
    });
    let rows = 0;
    let last = -1;
    for await (const batch of rs.stream()) {
      rows += batch.length;
      last = Number((batch[batch.length - 1]?.json<[string]>() ?? ['-1'])[0]);
    }
    expect(rows).toBe(1_000_000);
    expect(last).toBe(999_999);
  });
  test('raw: a streamable format is sent chunked (no Content-Length)', async () => {
    const res = await fetch(`${base}/`, {
      method: 'POST',
      headers: { Authorization: auth },
      body: 'SELECT number FROM numbers(200000)',
    });
    expect(res.headers.get('content-length')).toBeNull();
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    expect((await res.text()).split('\n').length).toBe(200001);
  });
  test('enable_http_compression=1 with Accept-Encoding: gzip → gzip response (client and raw)', async () => {
    const c = client({ compression: { response: true } });
    const rs = await c.query({ query: 'SELECT count() AS c FROM numbers(12345)', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ c: '12345' }]);
    const r = await fetch(`${base}/?enable_http_compression=1`, {
      method: 'POST',
      headers: { Authorization: auth, 'Accept-Encoding': 'gzip' },
      body: 'SELECT 1',
    });
    // fetch decodes gzip transparently; the header proves the server compressed.
    expect(r.headers.get('content-encoding')).toBe('gzip');
    expect(await r.text()).toBe('1\n');
  });
});

describe('concurrent requests', () => {
  test('a fast query finishes while a slow one is still running', async () => {
    const c = client();
    const order: string[] = [];
    const slow = await startSlowStream();
    const slowDone = slow.rest.then(() => order.push('slow'));
    const fast = await c.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow' });
    expect(await fast.json()).toEqual([{ one: 1 }]);
    order.push('fast');
    await slowDone;
    expect(order).toEqual(['fast', 'slow']);
  });
  test('50 requests at once all get their own answer', async () => {
    const c = client({ max_open_connections: 25 });
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const rs = await c.query({
          query: 'SELECT {i:UInt32} * 2 AS v',
          query_params: { i },
          format: 'JSONEachRow',
        });
        return Number((await rs.json<{ v: string }>())[0]?.v);
      }),
    );
    expect(answers).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
  });
});

describe('found in review: binary inserts, disconnects, session isolation, multi-statements', () => {
  const table = uniqueName('bin');
  beforeAll(async () => {
    await client().command({
      query: `CREATE TABLE ${table} (a UInt8, b String) ENGINE = MergeTree ORDER BY a`,
    });
  });
  const rows = async (): Promise<string> =>
    await (
      await client().query({ query: `SELECT * FROM ${table} ORDER BY a`, format: 'TabSeparated' })
    ).text();

  test('a Parquet insert through client.insert() arrives byte-exact', async () => {
    const pq = await raw('/', {
      body: "SELECT number::UInt8 AS a, concat('p', toString(number)) AS b FROM numbers(3) FORMAT Parquet",
    });
    await client().insert({
      table,
      values: Readable.from([pq.body], { objectMode: false }),
      format: 'Parquet',
    });
    expect(await rows()).toBe('0\tp0\n1\tp1\n2\tp2\n');
  });
  test('raw: RowBinary bytes in the body (not valid UTF-8) are inserted exactly', async () => {
    // a=200, b='x'; a=201, b='yz'
    const body = Buffer.from([200, 1, 0x78, 201, 2, 0x79, 0x7a]);
    const r = await raw(`/?query=${encodeURIComponent(`INSERT INTO ${db.name}.${table} FORMAT RowBinary`)}`, {
      body,
    });
    expect(r.status).toBe(200);
    expect(await rows()).toContain('200\tx\n201\tyz\n');
  });
  test('a client that goes away mid-stream frees the session for its next query', async () => {
    const sid = uniqueName('gone');
    const controller = new AbortController();
    const res = await fetch(`${base}/?session_id=${sid}`, {
      method: 'POST',
      headers: { Authorization: auth },
      body: 'SELECT number FROM numbers(100000000)',
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    expect((await reader?.read())?.done).toBe(false);
    controller.abort();
    // The server notices the closed socket and releases the session; poll (bounded) until it answers.
    let answer = '';
    for (let i = 0; i < 100 && answer !== '1\n'; i++) {
      const r = await raw(`/?session_id=${sid}`, { body: 'SELECT 1' });
      answer = r.body.toString();
      if (answer !== '1\n') {
        expect(r.headers.get('x-clickhouse-exception-code')).toBe('373');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    expect(answer).toBe('1\n');
  });
  test('an error after streaming started, through gzip, still reaches the client as a ClickHouseError', async () => {
    const gz = client({ compression: { response: true } });
    const rs = await gz.query({
      query: 'SELECT throwIf(number = 300000) FROM numbers(400000)',
      format: 'JSONEachRow',
    });
    const err = await rejection(
      (async () => {
        for await (const batch of rs.stream()) expect(Array.isArray(batch)).toBe(true);
      })(),
    );
    expect(err.code).toBe('395');
  });
  test('URL settings on a named session apply to that request only; the session keeps its own SET', async () => {
    const c = client();
    const session_id = uniqueName('iso');
    await c.command({ query: 'SET async_insert = 1', session_id });
    const q = "SELECT getSetting('max_threads') AS t, getSetting('async_insert') AS ai";
    const once = await c.query({
      query: q,
      session_id,
      format: 'JSONEachRow',
      clickhouse_settings: { max_threads: 3 },
    });
    expect(await once.json()).toEqual([{ t: 3, ai: true }]);
    const after = (
      await (
        await c.query({ query: q, session_id, format: 'JSONEachRow' })
      ).json<{ t: number; ai: boolean }>()
    )[0];
    expect(after?.t).not.toBe(3);
    expect(after?.ai).toBe(true);
  });
  test('raw: a session expires after session_timeout', async () => {
    const sid = uniqueName('exp');
    expect((await raw(`/?session_id=${sid}&session_timeout=1`, { body: 'SELECT 1' })).status).toBe(200);
    // every request sets the session's timeout anew (default 60 s), so this one passes 1 s too
    expect(
      (await raw(`/?session_id=${sid}&session_check=1&session_timeout=1`, { body: 'SELECT 1' })).status,
    ).toBe(200);
    await new Promise((r) => setTimeout(r, 1500)); // the timeout is wall-clock by definition
    const gone = await raw(`/?session_id=${sid}&session_check=1`, { body: 'SELECT 1' });
    expect(gone.headers.get('x-clickhouse-exception-code')).toBe('372');
  });
  test('raw: multi-statements are refused (also over GET, where the second could write)', async () => {
    const multi = await raw('/', { body: 'SELECT 1; SELECT 2' });
    expect(multi.status).toBe(400);
    expect(multi.headers.get('x-clickhouse-exception-code')).toBe('62');
    const sneaky = await raw(
      `/?database=${db.name}&query=${encodeURIComponent(`SELECT 1; DROP TABLE ${table}`)}`,
    );
    expect(sneaky.status).toBe(400);
    expect(await rows()).not.toBe('');
    // a ';' inside a string is not a second statement
    expect((await raw('/', { body: "SELECT 'a;b'; " })).body.toString()).toBe('a;b\n');
  });
  test('raw: native compression (compress=1) is refused with NOT_IMPLEMENTED', async () => {
    const r = await raw('/?compress=1', { body: 'SELECT 1' });
    expect(r.status).toBe(501);
    expect(r.headers.get('x-clickhouse-exception-code')).toBe('48');
  });
});
