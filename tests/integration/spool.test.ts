/** The emitter's spool on disk: order, acknowledgement across reopen, torn tails, adoption, drop policies. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeRecords, openSpool } from '../../producers/spool/spool';
import type { SpoolRecord } from '../../producers/spool/spool';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenledger-spool-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const recs = (from: number, n: number): SpoolRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    key: `team-${(from + i) % 3}`,
    value: Buffer.from(`event-${String(from + i).padStart(4, '0')}`),
  }));
const values = (rs: readonly SpoolRecord[]): string[] => rs.map((r) => r.value.toString());

function drain(spool: ReturnType<typeof openSpool>, chunk = 7): string[] {
  const out: string[] = [];
  for (let b = spool.peek(chunk); b !== undefined; b = spool.peek(chunk)) {
    out.push(...values(b.records));
    b.commit();
  }
  return out;
}

test('records come back in the order appended, across segments; committed ones are gone', () => {
  const spool = openSpool({ dir, maxBytes: 1 << 20, segmentBytes: 200, dropPolicy: 'drop-newest' });
  expect(spool.append(recs(0, 10))).toBe(true);
  expect(spool.append(recs(10, 15))).toBe(true);
  expect(fs.readdirSync(dir).filter((f) => f.endsWith('.spool')).length).toBeGreaterThan(1);
  expect(drain(spool)).toEqual(values(recs(0, 25)));
  expect(spool.isEmpty()).toBe(true);
  expect(spool.peek(5)).toBeUndefined();
  spool.close();
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('an uncommitted peek is returned again; progress survives a reopen by the next process', () => {
  const first = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  first.append(recs(0, 10));
  const b = first.peek(4);
  expect(values(b?.records ?? [])).toEqual(values(recs(0, 4)));
  expect(values(first.peek(4)?.records ?? [])).toEqual(values(recs(0, 4))); // not committed yet
  b?.commit();
  first.close();
  // Same process, so adopt it by renaming the owner pid to one that does not exist.
  for (const f of fs.readdirSync(dir)) {
    fs.renameSync(path.join(dir, f), path.join(dir, f.replace(/^(seg-\d+-)\d+-/, '$1999999999-')));
  }
  const second = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  expect(second.adoptedSegments).toBe(1);
  expect(drain(second)).toEqual(values(recs(4, 6)));
});

test('segments of a live process are not adopted', () => {
  const a = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  a.append(recs(0, 3));
  const b = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  expect(b.adoptedSegments).toBe(0);
  expect(b.isEmpty()).toBe(true);
  expect(drain(a)).toEqual(values(recs(0, 3)));
});

test('a torn tail (process killed mid-write) is skipped and counted; the records before it survive', () => {
  const drops: [number, string][] = [];
  const spool = openSpool({
    dir,
    maxBytes: 1 << 20,
    dropPolicy: 'drop-newest',
    onDrop: (n, r) => drops.push([n, r]),
  });
  spool.append(recs(0, 5));
  spool.close();
  const file = path.join(dir, fs.readdirSync(dir)[0] ?? '');
  const torn = encodeRecords(recs(5, 1)).subarray(0, 7);
  fs.appendFileSync(file, torn);
  for (const f of fs.readdirSync(dir))
    fs.renameSync(path.join(dir, f), path.join(dir, f.replace(/^(seg-\d+-)\d+-/, '$1999999999-')));
  const reopened = openSpool({
    dir,
    maxBytes: 1 << 20,
    dropPolicy: 'drop-newest',
    onDrop: (n, r) => drops.push([n, r]),
  });
  expect(drain(reopened)).toEqual(values(recs(0, 5)));
  expect(drops).toEqual([[1, 'spool_corrupt']]);
});

test('drop-newest refuses what does not fit and counts it; drop-oldest makes room by deleting the oldest segment', () => {
  const drops: [number, string][] = [];
  const one = encodeRecords(recs(0, 1)).length;
  const newest = openSpool({
    dir: path.join(dir, 'n'),
    maxBytes: one * 10,
    segmentBytes: one * 5,
    dropPolicy: 'drop-newest',
    onDrop: (n, r) => drops.push([n, r]),
  });
  expect(newest.append(recs(0, 10))).toBe(true);
  expect(newest.append(recs(10, 3))).toBe(false);
  expect(drops).toEqual([[3, 'spool_full']]);
  expect(drain(newest)).toEqual(values(recs(0, 10)));

  drops.length = 0;
  const oldest = openSpool({
    dir: path.join(dir, 'o'),
    maxBytes: one * 10,
    segmentBytes: one * 5,
    dropPolicy: 'drop-oldest',
    onDrop: (n, r) => drops.push([n, r]),
  });
  for (let i = 0; i < 10; i += 5) oldest.append(recs(i, 5));
  expect(oldest.append(recs(10, 5))).toBe(true);
  expect(drops).toEqual([[5, 'spool_full']]);
  expect(drain(oldest)).toEqual(values(recs(5, 10)));
});
