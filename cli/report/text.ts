/**
 * Text output, pure: aligned tables for terminals, CSV (RFC 4180) and JSON of rows. Shared by `tokenledger
 * report` (renderTable/renderCsv/renderJson) and `tokenledger sql`.
 */

const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** Characters as a terminal counts them (grapheme clusters; wide East Asian characters count one). */
export function textWidth(s: string): number {
  return Array.from(graphemes.segment(s)).length;
}

/** Columns whose cells are right-aligned (numbers). */
export type Align = 'left' | 'right';

/** Rows as an aligned table: a header, a rule, the rows; two spaces between columns. */
export function alignedTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string {
  const widths = header.map(textWidth);
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, textWidth(cell))));
  }
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        const pad = (widths[i] ?? 0) - textWidth(cell);
        return align[i] === 'right' ? ' '.repeat(pad) + cell : cell + ' '.repeat(pad);
      })
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** One CSV field: quoted when it holds a comma, a quote, CR or LF (or starts or ends with a space). */
export function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** CSV with a header line, CRLF-free (LF line ends), every field escaped. */
export function csv(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\n');
}

/** JSON.stringify with bigint as decimal strings. */
export function toJson(value: unknown, space?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), space);
}
