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

test('a segment whose pid is alive but belongs to a process started at another time (pid reuse) is adopted', () => {
  const a = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  a.append(recs(0, 4));
  a.close();
  // The owner is <pid>-<start time>: our own pid with a start time that is not ours is a different process.
  for (const f of fs.readdirSync(dir)) {
    const reused = f.replace(/^(seg-\d+-)(\d+)-(\d+)-/, `$1${process.pid}-1-`);
    fs.renameSync(path.join(dir, f), path.join(dir, reused));
  }
  const b = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  expect(b.adoptedSegments).toBe(1);
  expect(drain(b)).toEqual(values(recs(0, 4)));
});

test('close() releases what is left, so the next spool on the folder (even in this process) replays it', () => {
  const a = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  a.append(recs(0, 6));
  a.peek(2)?.commit();
  a.close();
  expect(a.append(recs(6, 1))).toBe(false); // closed: refused, the caller counts it
  const b = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  expect(b.adoptedSegments).toBe(1);
  expect(drain(b)).toEqual(values(recs(2, 4)));
});

test('drop-oldest deleting the segment being replayed: its late commit is ignored, nothing else is lost', () => {
  const drops: [number, string][] = [];
  const one = encodeRecords(recs(0, 1)).length;
  const spool = openSpool({
    dir,
    maxBytes: one * 10,
    segmentBytes: one * 5,
    dropPolicy: 'drop-oldest',
    onDrop: (n, r) => drops.push([n, r]),
  });
  spool.append(recs(0, 5));
  spool.append(recs(5, 5));
  const replaying = spool.peek(3); // records 0..2 of the oldest segment are on their way to Kafka
  spool.append(recs(10, 5)); // the spool is full: the oldest segment goes
  expect(drops).toEqual([[5, 'spool_full']]);
  replaying?.commit();
  expect(drain(spool)).toEqual(values(recs(5, 10)));
});

test('a corrupt record in the middle: the count lost is estimated from the bytes skipped, not taken as 1', () => {
  const drops: [number, string][] = [];
  const a = openSpool({ dir, maxBytes: 1 << 20, dropPolicy: 'drop-newest' });
  a.append(recs(0, 20));
  a.close();
  const file = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.spool')) ?? '');
  const bytes = fs.readFileSync(file);
  const one = encodeRecords(recs(0, 1)).length;
  bytes[one * 10 + 5] = (bytes[one * 10 + 5] ?? 0) ^ 0xff; // damage record 10's checksum
  fs.writeFileSync(file, bytes);
  const b = openSpool({
    dir,
    maxBytes: 1 << 20,
    dropPolicy: 'drop-newest',
    onDrop: (n, r) => drops.push([n, r]),
  });
  expect(drain(b)).toEqual(values(recs(0, 10)));
  expect(drops).toEqual([[10, 'spool_corrupt']]);
});
