/** The usage-event schema versions (v1.avsc, v2.avsc, ...) as a SchemaRegistry, loaded once on first use. */
import fs from 'node:fs';
import path from 'node:path';
import { SchemaRegistry } from '../codec';
import type { UsageEvent } from './types';

export const USAGE_EVENT_SCHEMA_DIR = __dirname;

/** Every published version, oldest first. A new version is a new vN.avsc file; never edit a published one. */
export function usageEventSchemaFiles(): { version: number; file: string }[] {
  return fs
    .readdirSync(USAGE_EVENT_SCHEMA_DIR)
    .map((f) => /^v(\d+)\.avsc$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), file: path.join(USAGE_EVENT_SCHEMA_DIR, m[0]) }))
    .sort((a, b) => a.version - b.version);
}

let registry: SchemaRegistry<UsageEvent> | undefined;

export function usageEventRegistry(): SchemaRegistry<UsageEvent> {
  registry ??= new SchemaRegistry<UsageEvent>(
    'usage-event',
    usageEventSchemaFiles().map(({ version, file }) => ({
      version,
      schema: JSON.parse(fs.readFileSync(file, 'utf8')) as object,
    })),
  );
  return registry;
}
