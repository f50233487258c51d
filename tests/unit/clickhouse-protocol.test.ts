import { ClickHouseError, extractErrorAtTheEndOfChunk } from '@clickhouse/client';
import {
  ProtocolError,
  assembleQuery,
  contentType,
  describeEngineError,
  errorBody,
  explicitFormat,
  hasMultipleStatements,
  httpStatusFor,
  infileInsertSql,
  midStreamException,
  parseMultipart,
  parseRequest,
  planInfileInsert,
  planRawInsert,
  preludeStatements,
  returnsRows,
  streamHeaderLines,
  summaryHeader,
  withBodyParams,
} from '../../infra/clickhouse/protocol';

const parse = (qs: string, headers: Record<string, string> = {}): ReturnType<typeof parseRequest> =>
  parseRequest(new URLSearchParams(qs), headers);

describe('parseRequest', () => {
  test('splits URL parameters into query, params, settings and HTTP-only switches', () => {
    const r = parse(
      'query=SELECT+1&database=db1&default_format=CSV&session_id=s1&session_timeout=30&query_id=q1' +
        '&param_x=a%5Ctb&max_threads=3&enable_http_compression=1&wait_end_of_query=1&send_progress_in_http_headers=1',
    );
    expect(r).toMatchObject({
      query: 'SELECT 1',
      database: 'db1',
      defaultFormat: 'CSV',
      sessionId: 's1',
      sessionTimeoutSeconds: 30,
      queryId: 'q1',
      params: { x: 'a\\tb' },
      settings: { max_threads: '3' },
      compressResponse: true,
      waitEndOfQuery: true,
      credentials: { user: 'default', password: '' },
    });
  });

  test('credentials from Basic auth, X-ClickHouse headers, or URL parameters; two methods at once is refused', () => {
    const basic = `Basic ${Buffer.from('alice:pa:ss').toString('base64')}`;
    expect(parse('', { authorization: basic }).credentials).toEqual({ user: 'alice', password: 'pa:ss' });
    expect(parse('', { 'x-clickhouse-user': 'bob', 'x-clickhouse-key': 'k' }).credentials).toEqual({
      user: 'bob',
      password: 'k',
    });
    expect(parse('user=carol&password=p').credentials).toEqual({ user: 'carol', password: 'p' });
    expect(() => parse('user=carol', { authorization: basic })).toThrow(ProtocolError);
  });

  test('a generated query id when none is given; bad session timeout and setting names are errors', () => {
    expect(parse('').queryId).toMatch(/^[0-9a-f-]{36}$/);
    expect(() => parse('session_timeout=99999')).toThrow(/Invalid session timeout/);
    expect(() => parse('bad-name=1')).toThrow(/Unknown setting/);
  });
});

describe('query assembly and classification', () => {
  test('the query parameter, a newline, then the body', () => {
    expect(assembleQuery('INSERT INTO t FORMAT CSV', '1,2')).toBe('INSERT INTO t FORMAT CSV\n1,2');
    expect(assembleQuery('', 'SELECT 1')).toBe('SELECT 1');
    expect(assembleQuery('SELECT 1', '')).toBe('SELECT 1');
  });

  test('prelude sets database, server defaults, settings and parameters with exact text', () => {
    const r = parse("database=my%60db&max_threads=2&param_s=it's%5Cn");
    expect(preludeStatements(r, { async_insert: '0' })).toEqual([
      'USE `my\\`db`',
      "SET async_insert = '0'",
      "SET max_threads = '2'",
      "SET param_s = 'it\\'s\\\\n'",
    ]);
    // a request's own setting overrides the server default
    expect(preludeStatements(parse('async_insert=1'), { async_insert: '0' })).toEqual([
      "SET async_insert = '1'",
    ]);
  });

  test('row-returning statements and their explicit FORMAT', () => {
    expect(returnsRows('  -- comment\n/* x */ SELECT 1')).toBe(true);
    expect(returnsRows('WITH 1 AS x SELECT x')).toBe(true);
    expect(returnsRows('INSERT INTO t SELECT 1')).toBe(false);
    expect(returnsRows('CREATE TABLE t (x UInt8) ENGINE = Memory')).toBe(false);
    expect(explicitFormat('SELECT 1 FORMAT JSONEachRow')).toBe('JSONEachRow');
    expect(explicitFormat('SELECT 1 format CSV;')).toBe('CSV');
    expect(explicitFormat('SELECT 1')).toBeUndefined();
    expect(explicitFormat('INSERT INTO t FORMAT CSV')).toBeUndefined();
  });

  test('plain bulk inserts are planned as raw byte inserts; anything else is not', () => {
    expect(planRawInsert('INSERT INTO db.t (`a`, b) FORMAT JSONEachRow')).toEqual({
      table: 'db.t',
      columns: ['a', 'b'],
      format: 'JSONEachRow',
    });
    expect(planRawInsert('insert into table `t` format tsv')).toEqual({
      table: 't',
      columns: undefined,
      format: 'TSV',
    });
    expect(planRawInsert('INSERT INTO t FORMAT Parquet')).toBeUndefined();
    expect(planRawInsert('INSERT INTO t SETTINGS async_insert=1 FORMAT CSV')).toBeUndefined();
    expect(planRawInsert('INSERT INTO t SELECT 1')).toBeUndefined();
  });

  test('streamable formats and the header lines their chunks repeat', () => {
    expect(streamHeaderLines('JSONEachRow')).toBe(0);
    expect(streamHeaderLines('CSVWithNames')).toBe(1);
    expect(streamHeaderLines('TSVWithNamesAndTypes')).toBe(2);
    expect(streamHeaderLines('JSON')).toBeUndefined();
    expect(streamHeaderLines('Parquet')).toBeUndefined();
    expect(contentType('JSON')).toBe('application/json; charset=UTF-8');
    expect(contentType('TabSeparated')).toBe('text/tab-separated-values; charset=UTF-8');
    expect(contentType('Parquet')).toBe('application/octet-stream');
  });
});

describe('errors in ClickHouse form', () => {
  test('HTTP status by error name, as exceptionCodeToHTTPStatus.cpp', () => {
    expect(httpStatusFor('SYNTAX_ERROR')).toBe(400);
    expect(httpStatusFor('UNKNOWN_TABLE')).toBe(404);
    expect(httpStatusFor('AUTHENTICATION_FAILED')).toBe(403);
    expect(httpStatusFor('REQUIRED_PASSWORD')).toBe(401);
    expect(httpStatusFor('TIMEOUT_EXCEEDED')).toBe(408);
    expect(httpStatusFor('MEMORY_LIMIT_EXCEEDED')).toBe(500);
  });

  test('engine messages keep their code and name; the body ends with the version', () => {
    const f = describeEngineError(
      new Error('Code: 60. DB::Exception: Unknown table expression identifier (x) in scope. (UNKNOWN_TABLE)'),
    );
    expect(f).toMatchObject({ code: 60, name: 'UNKNOWN_TABLE' });
    expect(errorBody(f, '26.7.2.1')).toBe(`${f.text} (version 26.7.2.1)\n`);
    expect(
      describeEngineError(new ProtocolError(516, 'AUTHENTICATION_FAILED', 'u: Authentication failed')),
    ).toMatchObject({
      code: 516,
      name: 'AUTHENTICATION_FAILED',
      text: 'Code: 516. DB::Exception: u: Authentication failed. (AUTHENTICATION_FAILED)',
    });
    expect(describeEngineError(new Error('weird')).code).toBe(1001);
  });

  test('a mid-stream exception block is what @clickhouse/client decodes', () => {
    const block = midStreamException(
      'Code: 395. DB::Exception: Value passed to throwIf is non-zero. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)',
      'abc123',
    );
    const chunk = Buffer.concat([Buffer.from('{"a":1}\n{"a":2}\n'), block]);
    const err = extractErrorAtTheEndOfChunk(new Uint8Array(chunk), 'abc123');
    expect(err).toBeInstanceOf(ClickHouseError);
    expect(err).toMatchObject({ code: '395', type: 'FUNCTION_THROW_IF_VALUE_IS_NON_ZERO' });
  });

  test('summary header uses strings, as ClickHouse does', () => {
    const h = JSON.parse(
      summaryHeader({
        readRows: 2,
        readBytes: 10,
        writtenRows: 2,
        writtenBytes: 8,
        resultRows: 0,
        resultBytes: 0,
        elapsedSeconds: 0.5,
      }),
    ) as Record<string, string>;
    expect(h).toMatchObject({ read_rows: '2', written_rows: '2', elapsed_ns: '500000000' });
  });
});

test('multipart/form-data bodies yield the query and param_* parts', () => {
  const b = 'XyZ';
  const body = Buffer.from(
    `--${b}\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT {v:String}\r\n` +
      `--${b}\r\nContent-Disposition: form-data; name="param_v"\r\n\r\nline1\nline2\r\n--${b}--\r\n`,
  );
  expect(parseMultipart(body, `multipart/form-data; boundary=${b}`)).toEqual({
    query: 'SELECT {v:String}',
    params: { v: 'line1\nline2' },
  });
  const file = Buffer.from(
    `--${b}\r\nContent-Disposition: form-data; name="t"; filename="t.csv"\r\n\r\n1\r\n--${b}--`,
  );
  expect(() => parseMultipart(file, `multipart/form-data; boundary=${b}`)).toThrow(/external tables/);
});

describe('found in review', () => {
  test('multi-statement detection ignores strings, quoted names and comments', () => {
    expect(hasMultipleStatements('SELECT 1; SELECT 2')).toBe(true);
    expect(hasMultipleStatements('SELECT 1;')).toBe(false);
    expect(hasMultipleStatements('SELECT 1; -- trailing comment\n;')).toBe(false);
    expect(hasMultipleStatements('SELECT \'a;b\', `c;d`, "e;f" /* ; */')).toBe(false);
    expect(hasMultipleStatements("SELECT 'it\\'s; fine'")).toBe(false);
    expect(hasMultipleStatements("SELECT 1; 'x'")).toBe(true);
    // the data of an INSERT may contain anything
    expect(hasMultipleStatements('INSERT INTO t FORMAT CSV\n1,";"\n2;3')).toBe(false);
    expect(hasMultipleStatements("INSERT INTO t VALUES (1, ';'); (2)")).toBe(false);
  });
  test('binary-format inserts are planned as FROM INFILE, keeping columns and SETTINGS', () => {
    const plan = planInfileInsert('INSERT INTO db.t (a, b) SETTINGS async_insert=0 FORMAT Parquet');
    expect(plan).toEqual({
      target: 'INSERT INTO db.t (a, b)',
      settings: 'SETTINGS async_insert=0',
      format: 'Parquet',
    });
    expect(plan && infileInsertSql(plan, "/tmp/x'y")).toBe(
      "INSERT INTO db.t (a, b) FROM INFILE '/tmp/x\\'y' SETTINGS async_insert=0 FORMAT Parquet",
    );
    expect(planInfileInsert('SELECT 1 FORMAT Parquet')).toBeUndefined();
  });
  test('multipart parameter names are checked like URL ones; compress=1 is refused', () => {
    expect(() => withBodyParams(parse(''), { 'x = 1; DROP TABLE t; SET param_y': 'v' })).toThrow(
      /Invalid query parameter name/,
    );
    expect(withBodyParams(parse('param_a=1'), { b: '2' }).params).toEqual({ a: '1', b: '2' });
    expect(() => parse('compress=1')).toThrow(/not supported by the local endpoint/);
    expect(() => parse('decompress=1')).toThrow(ProtocolError);
  });
  test('GET on a fresh session is read-only in the engine', () => {
    expect(preludeStatements(parse(''), {}, { readonly: true })).toEqual(['SET readonly = 2']);
  });
});
