/** UTF-8 byte order mark: spreadsheets (Excel in particular) read the CSV as UTF-8 only with it. */
export const BOM = '\uFEFF';

/** One RFC 4180 record: fields quoted when they hold a comma, a quote, CR or LF; lines end in CRLF. */
export function csvLine(fields: readonly string[]): string {
  return fields.map((f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f)).join(',') + '\r\n';
}

export function toCsv(rows: readonly (readonly string[])[]): string {
  return BOM + rows.map(csvLine).join('');
}
