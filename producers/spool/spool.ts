/**
 * The emitter's local spool: where events go while Kafka is unreachable, replayed in order when it is back,
 * also after a restart. Append-only segment files in one folder:
 *
 *   seg-<created ms>-<pid>-<instance>-<seq>.spool   records: [u32 length][u32 crc32][u16 key length][key][value]
 *   <segment>.ack                                   bytes of the segment already delivered (replay resumes there)
 *
 * Names sort chronologically. Segments of a process that is no longer alive are adopted (renamed to this
 * process) at open, so a process killed with SIGKILL after spooling has its events sent by the next one.
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
  /** Told how many records were lost and why (spool full, corrupt tail). */
  readonly onDrop?: (count: number, reason: 'spool_full' | 'spool_corrupt') => void;
}

export interface SpoolBatch {
  readonly records: readonly SpoolRecord[];
  /** Marks these records delivered; the next `peek` returns what follows. */
  commit(): void;
}

export interface Spool {
  /** Appends records in order; false when they did not fit (drop-newest: nothing was written). */
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

interface Segment {
  readonly file: string;
  size: number;
  acked: number;
}

const HEADER = 8;
let instanceCounter = 0;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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

export function openSpool(options: SpoolOptions): Spool {
  const segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
  fs.mkdirSync(options.dir, { recursive: true });
  const owner = `${process.pid}-${(instanceCounter++).toString(36)}${randomBytes(2).toString('hex')}`;
  let seq = 0;
  const segments: Segment[] = [];
  let writeFd: number | undefined;
  let writing: Segment | undefined;
  let cache: { file: string; from: number; parsed: ReturnType<typeof decodeRecords> } | undefined;

  const segName = (createdMs: string): string =>
    `seg-${createdMs}-${owner}-${String(seq++).padStart(6, '0')}.spool`;
  const ackFile = (s: Segment): string => `${s.file}.ack`;
  const readAck = (file: string): number => {
    try {
      return Number(fs.readFileSync(`${file}.ack`, 'utf8')) || 0;
    } catch {
      return 0;
    }
  };

  // Adopt the segments of processes that are gone, oldest first.
  let adoptedSegments = 0;
  for (const name of fs
    .readdirSync(options.dir)
    .filter((n) => /^seg-\d+-\d+-[0-9a-z]+-\d+\.spool$/.test(n))
    .sort()) {
    const [, created, pid] = /^seg-(\d+)-(\d+)-/.exec(name) ?? [];
    if (created === undefined || pid === undefined || isAlive(Number(pid))) continue;
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
    if (s === writing) closeWriter();
    fs.rmSync(s.file, { force: true });
    fs.rmSync(ackFile(s), { force: true });
    segments.splice(segments.indexOf(s), 1);
    if (cache?.file === s.file) cache = undefined;
  };

  const countRecords = (s: Segment): number => {
    const buf = fs.readFileSync(s.file).subarray(s.acked);
    return decodeRecords(buf).records.length;
  };

  return {
    adoptedSegments,
    append(records) {
      if (records.length === 0) return true;
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
      fs.writeSync(writeFd ?? -1, buf);
      if (options.fsync === true && writeFd !== undefined) fs.fsyncSync(writeFd);
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
        if (
          cache?.file !== s.file ||
          cache.from !== s.acked ||
          (s === writing && cache.parsed.records.at(-1)?.end !== s.size - s.acked)
        ) {
          const buf = fs.readFileSync(s.file).subarray(s.acked, s.size);
          cache = { file: s.file, from: s.acked, parsed: decodeRecords(buf) };
        }
        const { records, corruptAt } = cache.parsed;
        if (records.length === 0) {
          // A torn or corrupt record at the read position: the rest of this segment cannot be trusted.
          options.onDrop?.(1, 'spool_corrupt');
          s.acked = s.size;
          if (s === writing) closeWriter();
          removeSegment(s);
          continue;
        }
        const take = records.slice(0, max);
        const consumed = take.at(-1)?.end ?? 0;
        const segment = s;
        const from = cache.from;
        return {
          records: take.map((r) => r.record),
          commit() {
            if (segment.acked !== from) return; // already committed
            segment.acked = from + consumed;
            const rest = records.slice(take.length).map((r) => ({ record: r.record, end: r.end - consumed }));
            cache = {
              file: segment.file,
              from: segment.acked,
              parsed: {
                records: rest,
                corruptAt: corruptAt === undefined ? undefined : corruptAt - consumed,
              },
            };
            if (rest.length === 0 && corruptAt !== undefined) {
              options.onDrop?.(1, 'spool_corrupt');
              segment.acked = segment.size;
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
      closeWriter();
      for (const s of [...segments]) if (s.acked >= s.size) removeSegment(s);
    },
  };
}
