/** Number formatting shared by the terminal table and the Markdown report. */

/** `123456.7` → `123,457`; below 100 keeps one decimal (`12.3`). */
export function fmtRate(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n < 100) return (Math.round(n * 10) / 10).toLocaleString('en-US');
  return Math.round(n).toLocaleString('en-US');
}

/** Milliseconds with 3 significant digits (`0.0123`, `1.23`, `123`, `1,234`). */
export function fmtMs(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n === 0) return '0';
  if (n >= 1000) return Math.round(n).toLocaleString('en-US');
  return Number(n.toPrecision(3)).toString();
}

/** A ratio as a percentage (`0.4567` → `45.7%`), or `–` for null. */
export function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  return `${(Math.round(r * 1000) / 10).toLocaleString('en-US')}%`;
}

/** Escapes a value for a Markdown table cell. */
export function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A Markdown table. */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = header.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  const line = (cells: readonly string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
  return [line(header), line(sep), ...rows.map(line)].join('\n');
}
