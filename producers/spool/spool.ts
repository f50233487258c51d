/**
 * The emitter's local spool: where events go while Kafka is unreachable, replayed in order when it is back,
 * also after a restart. Append-only segment files in one folder:
 *
 *   seg-<created ms>-<pid>-<start>-<instance>-<seq>.spool   records: [u32 length][u32 crc32][u16 key length][key][value]
 *   <segment>.ack        bytes of the segment already delivered (replay resumes there)
 *
 * Names sort chronologically. The owner is a process id plus that process's start time, so a restarted
 * container that gets the same pid back is still recognised as a different process. Segments of owners that are
 * gone — or that released them on close (owner 0-0) — are adopted (renamed to this spool) at open, so a process
 * killed with SIGKILL after spooling has its events sent by the next one. One spool folder per host: processes
 * in other pid namespaces cannot be told alive or dead.
 * Appends are one write(2) per batch: they survive the process being killed (not the machine losing power,
 * unless `fsync` is on). A torn or corrupt tail is detected by length and CRC and skipped, and reported.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from './crc32';

export interface SpoolRecord {
  readonly key: string;
  readonly value: Buffer;
}

export type DropPolicy = 'drop-newest' | 'drop-oldest';

export interface SpoolOptions {
  readonly dir: string;
  /** Cap on the spool's size on disk (undelivered bytes). */
  readonly maxBytes: number;
  readonly segmentBytes?: number;
  /** When the cap is reached: refuse new records (drop-newest) or delete the oldest segment (drop-oldest). */
  readonly dropPolicy: DropPolicy;
  readonly fsync?: boolean;
  /** Told how many records were lost and why (spool full, corrupt tail; the count of a corrupt tail is estimated). */
  readonly onDrop?: (count: number, reason: 'spool_full' | 'spool_corrupt') => void;
}

export interface SpoolBatch {
  readonly records: readonly SpoolRecord[];
  /** Marks these records delivered; the next `peek` returns what follows. */
  commit(): void;
}

export interface Spool {
  /**
   * Appends records in order; false when they did not fit (drop-newest: nothing was written) or the spool is
   * closed. Throws on an I/O error (disk full, permissions): the caller counts and reports those.
   */
  append(records: readonly SpoolRecord[]): boolean;
  /** The oldest undelivered records, at most `max`; undefined when the spool is empty. */
  peek(max: number): SpoolBatch | undefined;
  /** Undelivered bytes on disk. */
  bytes(): number;
  isEmpty(): boolean;
  /** Records adopted from earlier processes at open. */
  readonly adoptedSegments: number;
  close(): void;
}

/** A process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or '0' without /proc. */
function startTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch {
    return '0';
  }
}

/** True when the process that wrote a segment (pid + start time) still runs. Owner 0 means released. */
function ownerAlive(pid: number, start: string): boolean {
  if (pid === 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTime(pid);
  return now === '0' || start === '0' || now === start;
}

interface Segment {
  readonly file: string;
  size: number;
  acked: number;
}

interface Parsed {
  readonly file: string;
  /** Segment offset of the first record in `records`. */
  from: number;
  /** Segment offset up to which bytes were read and parsed. */
  parsedTo: number;
  records: { record: SpoolRecord; end: number }[];
  /** Segment offset of a torn or corrupt record, if one was met. */
  corruptAt: number | undefined;
  /** Records parsed so far and their bytes, to estimate how many a corrupt tail held. */
  seenRecords: number;
  seenBytes: number;
}

const HEADER = 8;
const NAME_RE = /^seg-(\d+)-(\d+)-(\d+)-([0-9a-z]+)-(\d+)\.spool$/;
let instanceCounter = 0;

export function encodeRecords(records: readonly SpoolRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const key = Buffer.from(r.key, 'utf8');
    const payloadLength = 2 + key.length + r.value.length;
    const rec = Buffer.allocUnsafe(HEADER + payloadLength);
    rec.writeUInt32LE(payloadLength, 0);
    rec.writeUInt16LE(key.length, HEADER);
    key.copy(rec, HEADER + 2);
    r.value.copy(rec, HEADER + 2 + key.length);
    rec.writeUInt32LE(crc32(rec, HEADER, rec.length), 4);
    parts.push(rec);
  }
  return Buffer.concat(parts);
}

/** Parses records from `buf`; stops at the first torn or corrupt record and says where. */
export function decodeRecords(buf: Buffer): {
  records: { record: SpoolRecord; end: number }[];
  corruptAt: number | undefined;
} {
  const records: { record: SpoolRecord; end: number }[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + HEADER > buf.length) return { records, corruptAt: pos };
    const len = buf.readUInt32LE(pos);
    const end = pos + HEADER + len;
    if (len < 2 || end > buf.length || crc32(buf, pos + HEADER, end) !== buf.readUInt32LE(pos + 4)) {
      return { records, corruptAt: pos };
    }
    const keyLen = buf.readUInt16LE(pos + HEADER);
    const key = buf.toString('utf8', pos + HEADER + 2, pos + HEADER + 2 + keyLen);
    const value = Buffer.from(buf.subarray(pos + HEADER + 2 + keyLen, end));
    records.push({ record: { key, value }, end });
    pos = end;
  }
  return { records, corruptAt: undefined };
}

function readRange(file: string, from: number, to: number): Buffer {
  const buf = Buffer.allocUnsafe(to - from);
  const fd = fs.openSync(file, 'r');
  try {
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

export function openSpool(options: SpoolOptions): Spool {
  const segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
  fs.mkdirSync(options.dir, { recursive: true });
  const owner = `${process.pid}-${startTime(process.pid)}-${(instanceCounter++).toString(36)}${randomBytes(2).toString('hex')}`;
  let seq = 0;
  const segments: Segment[] = [];
  let writeFd: number | undefined;
  let writing: Segment | undefined;
  let parsed: Parsed | undefined;
  let closed = false;

  const segName = (createdMs: string, who = owner): string =>
    `seg-${createdMs}-${who}-${String(seq++).padStart(6, '0')}.spool`;
  const ackFile = (s: Segment): string => `${s.file}.ack`;
  const readAck = (file: string): number => {
    try {
      return Number(fs.readFileSync(`${file}.ack`, 'utf8')) || 0;
    } catch {
      return 0;
    }
  };

  // Adopt the segments of processes that are gone (or released them), oldest first.
  let adoptedSegments = 0;
  for (const name of fs
    .readdirSync(options.dir)
    .filter((n) => NAME_RE.test(n))
    .sort()) {
    const [, created, pid, start] = NAME_RE.exec(name) ?? [];
    if (created === undefined || pid === undefined || start === undefined || ownerAlive(Number(pid), start))
      continue;
    const from = path.join(options.dir, name);
    const to = path.join(options.dir, segName(created));
    try {
      fs.renameSync(from, to); // atomic: if two processes race for it, one wins
    } catch {
      continue;
    }
    try {
      fs.renameSync(`${from}.ack`, `${to}.ack`);
    } catch {
      // no ack file: nothing of it was delivered yet
    }
    const size = fs.statSync(to).size;
    segments.push({ file: to, size, acked: Math.min(readAck(to), size) });
    adoptedSegments++;
  }

  const pending = (): number => segments.reduce((a, s) => a + (s.size - s.acked), 0);

  const closeWriter = (): void => {
    if (writeFd !== undefined) fs.closeSync(writeFd);
    writeFd = undefined;
    writing = undefined;
  };

  const removeSegment = (s: Segment): void => {
    const i = segments.indexOf(s);
    if (i < 0) return; // already gone (drop-oldest deleted it while it was being replayed)
    if (s === writing) closeWriter();
    fs.rmSync(s.file, { force: true });
    fs.rmSync(ackFile(s), { force: true });
    segments.splice(i, 1);
    if (parsed?.file === s.file) parsed = undefined;
  };

  /** Records in a segment not yet delivered (for drop accounting). */
  const countRecords = (s: Segment): number =>
    decodeRecords(readRange(s.file, s.acked, s.size)).records.length;

  /** An estimate of the records lost in a corrupt tail: its bytes over the average record size seen. */
  const estimateLost = (p: Parsed, s: Segment): number => {
    const lost = s.size - (p.corruptAt ?? s.size);
    const avg = p.seenRecords > 0 ? p.seenBytes / p.seenRecords : 200;
    return Math.max(1, Math.round(lost / Math.max(1, avg)));
  };

  /** Parsed records of the oldest segment from its acknowledged offset, reading only bytes not read before. */
  const parse = (s: Segment): Parsed => {
    if (parsed?.file !== s.file || parsed.from !== s.acked) {
      parsed = {
        file: s.file,
        from: s.acked,
        parsedTo: s.acked,
        records: [],
        corruptAt: undefined,
        seenRecords: 0,
        seenBytes: 0,
      };
    }
    if (parsed.corruptAt === undefined && parsed.parsedTo < s.size) {
      const base = parsed.parsedTo;
      const chunk = decodeRecords(readRange(s.file, base, s.size));
      for (const r of chunk.records) parsed.records.push({ record: r.record, end: base + r.end });
      parsed.seenRecords += chunk.records.length;
      parsed.seenBytes += chunk.records.at(-1)?.end ?? 0;
      parsed.parsedTo = chunk.corruptAt === undefined ? s.size : base + chunk.corruptAt;
      if (chunk.corruptAt !== undefined) parsed.corruptAt = base + chunk.corruptAt;
    }
    return parsed;
  };

  return {
    adoptedSegments,
    append(records) {
      if (records.length === 0) return true;
      if (closed) return false;
      const buf = encodeRecords(records);
      while (pending() + buf.length > options.maxBytes) {
        const oldest = segments[0];
        if (options.dropPolicy === 'drop-newest' || oldest === undefined) {
          options.onDrop?.(records.length, 'spool_full');
          return false;
        }
        options.onDrop?.(countRecords(oldest), 'spool_full');
        removeSegment(oldest);
      }
      if (writing === undefined || writing.size + buf.length > segmentBytes) {
        closeWriter();
        const file = path.join(options.dir, segName(String(Date.now()).padStart(15, '0')));
        writeFd = fs.openSync(file, 'a');
        writing = { file, size: 0, acked: 0 };
        segments.push(writing);
      }
      const fd = writeFd as number;
      let written = 0;
      while (written < buf.length) written += fs.writeSync(fd, buf, written, buf.length - written);
      if (options.fsync === true) fs.fsyncSync(fd);
      writing.size += buf.length;
      return true;
    },
    peek(max) {
      for (;;) {
        const s = segments[0];
        if (s === undefined) return undefined;
        if (s.acked >= s.size) {
          removeSegment(s);
          continue;
        }
        const p = parse(s);
        if (p.records.length === 0) {
          // A torn or corrupt record at the read position: the rest of this segment cannot be trusted.
          options.onDrop?.(estimateLost(p, s), 'spool_corrupt');
          s.acked = s.size;
          removeSegment(s);
          continue;
        }
        const take = p.records.slice(0, max);
        const consumed = take.at(-1)?.end ?? p.from;
        const segment = s;
        const from = p.from;
        return {
          records: take.map((r) => r.record),
          commit() {
            if (segment.acked !== from || !segments.includes(segment)) return; // already committed, or dropped
            segment.acked = consumed;
            if (parsed?.file === segment.file) {
              parsed.records = parsed.records.slice(take.length);
              parsed.from = consumed;
              if (parsed.records.length === 0 && parsed.corruptAt !== undefined) {
                options.onDrop?.(estimateLost(parsed, segment), 'spool_corrupt');
                segment.acked = segment.size;
              }
            }
            if (segment.acked >= segment.size) {
              removeSegment(segment); // also the segment being written: the next append starts a new one
            } else {
              fs.writeFileSync(ackFile(segment), String(segment.acked));
            }
          },
        };
      }
    },
    bytes: pending,
    isEmpty: () => pending() === 0,
    close() {
      if (closed) return;
      closed = true;
      closeWriter();
      for (const s of [...segments]) {
        if (s.acked >= s.size) {
          removeSegment(s);
          continue;
        }
        // Release what is left, so the next spool on this folder — in this process or another — adopts it.
        const created =
          /^seg-(\d+)-/.exec(path.basename(s.file))?.[1] ?? String(Date.now()).padStart(15, '0');
        const released = path.join(options.dir, segName(created, '0-0-released'));
        fs.renameSync(s.file, released);
        if (s.acked > 0) fs.writeFileSync(`${released}.ack`, String(s.acked));
        fs.rmSync(ackFile(s), { force: true });
      }
    },
  };
}
