/**
 * `tokenledger prices list` as a user runs it: the real CLI in a child process, its output and exit codes,
 * with and without an overrides file. Needs no broker or ClickHouse; files go to a private temporary folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, isolatedEnv } from '../helpers/cli';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-prices-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const env = isolatedEnv({});

interface ListJson {
  version: string;
  at: string;
  entries: {
    provider: string;
    model: string;
    aliases: string[];
    effective_from: string;
    input_per_mtok: string;
    cached_input_per_mtok: string;
    cache_write_per_mtok: string;
    output_per_mtok: string;
    source: string;
    origin: string;
  }[];
}

async function listJson(args: string[]): Promise<ListJson> {
  const r = await runCli(['prices', 'list', '--json', ...args], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as ListJson;
}

test('the table names every column and the entries in force', async () => {
  const r = await runCli(['prices', 'list', '--provider', 'anthropic', '--at', '2025-11-01'], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lines = r.stdout.split('\n');
  expect(lines[0]).toMatch(
    /^price catalog \S+: \d+ model\(s\) in force at 2025-11-01, USD per million tokens$/,
  );
  expect(lines[1]?.split(/\s{2,}/)).toEqual([
    'provider',
    'model',
    'aliases',
    'input',
    'cached',
    'cache write',
    'output',
    'reasoning',
    'from',
    'source',
  ]);
  const sonnet = lines.find((l) => l.includes(' claude-sonnet-4-5 '));
  expect(sonnet?.split(/\s+/)).toEqual([
    'anthropic',
    'claude-sonnet-4-5',
    'claude-sonnet-4-5-20250929',
    '3.00',
    '0.30',
    '3.75',
    '15.00',
    '=output',
    '2025-09-29',
    'https://platform.claude.com/docs/en/about-claude/pricing',
  ]);
  expect(r.stdout).not.toContain('claude-opus-4-5 '); // released 2025-11-24, after --at
  expect(r.stdout).not.toMatch(/^openai/m);
});

test('--at picks the entry in force: o3 before and after its price cut', async () => {
  const o3 = async (at: string): Promise<string[]> => {
    const list = await listJson(['--provider', 'openai', '--at', at]);
    const e = list.entries.find((x) => x.model === 'o3');
    return [list.at, e?.effective_from ?? '-', e?.input_per_mtok ?? '-', e?.output_per_mtok ?? '-'];
  };
  expect(await o3('2025-05-01')).toEqual(['2025-05-01', '2025-04-16', '10.00', '40.00']);
  expect(await o3('2025-06-10')).toEqual(['2025-06-10', '2025-06-10', '2.00', '8.00']);
  expect(await o3('2025-04-01')).toEqual(['2025-04-01', '-', '-', '-']);
});

test('--overrides merges negotiated prices over the catalog', async () => {
  const file = path.join(dir, 'overrides.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      version: 'acme-1',
      entries: [
        {
          provider: 'openai',
          model: 'gpt-4.1',
          effective_from: '2025-10-01',
          input_per_mtok: '1.60',
          cached_input_per_mtok: '0.40',
          cache_write_per_mtok: '1.60',
          output_per_mtok: '6.40',
          source: 'contract ACME-7',
          as_of: '2025-09-01',
        },
      ],
    }),
  );
  const list = await listJson(['--provider', 'openai', '--at', '2025-11-01', '--overrides', file]);
  expect(list.version).toMatch(/\+acme-1$/);
  const e = list.entries.find((x) => x.model === 'gpt-4.1');
  expect([e?.input_per_mtok, e?.output_per_mtok, e?.origin, e?.aliases]).toEqual([
    '1.60',
    '6.40',
    'overrides',
    ['gpt-4.1-2025-04-14'],
  ]);
  const table = await runCli(['prices', 'list', '--provider', 'openai', '--overrides', file], env);
  expect(table.stdout).toContain('contract ACME-7 (override)');
});

test('a bad --at value exits 2 naming the flag and the value', async () => {
  for (const bad of ['2025-13-01', 'yesterday', '2025-02-30']) {
    const r = await runCli(['prices', 'list', '--at', bad], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`tokenledger: --at must be a date YYYY-MM-DD, got "${bad}"\n`);
    expect(r.stdout).toBe('');
  }
});

test('an unknown --provider exits 2 and lists the providers', async () => {
  const r = await runCli(['prices', 'list', '--provider', 'openia'], env);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(
    /^tokenledger: --provider "openia" has no entries in the catalog; providers: .*\bopenai\b/,
  );
});

test('a bad overrides file exits 2 listing every problem with index, field and value', async () => {
  const file = path.join(dir, 'bad-overrides.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      version: 'bad-1',
      entries: [
        {
          provider: 'openai',
          model: 'gpt-4.1',
          effective_from: '2025-10-01',
          input_per_mtok: 1.6,
          cached_input_per_mtok: '0.40',
          cache_write_per_mtok: '1.60',
          output_per_mtok: '6.40',
          as_of: '2025-09-01',
        },
      ],
    }),
  );
  const r = await runCli(['prices', 'list', '--overrides', file], env);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('invalid price catalog (2 problems):');
  expect(r.stderr).toContain('bad-overrides.json: entries[0].input_per_mtok: must be a decimal string');
  expect(r.stderr).toContain(', got 1.6\n');
  expect(r.stderr).toContain('bad-overrides.json: entries[0].source: is required\n');

  const missing = await runCli(['prices', 'list', '--overrides', path.join(dir, 'nope.json')], env);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain(`overrides "${path.join(dir, 'nope.json')}": cannot read (ENOENT)`);
});
