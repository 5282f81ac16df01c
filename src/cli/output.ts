/**
 * How the admin commands print lists: an aligned table for a person at a terminal, JSON lines
 * (one object per row, nothing for no rows) for `--json` or when stdout is a pipe or a file,
 * so that `admin … list | jq` works without a flag.
 */
import { createRequire } from "node:module";
import type TableType from "cli-table3";

// Required when a table is printed, not at start-up: a removal or a piped list never draws one.
const loadTable = () => createRequire(import.meta.url)("cli-table3") as typeof TableType;

export interface ListFormat<T> {
  /** The row as a JSON line: full values, ISO times, arrays kept as arrays. */
  json: (row: T) => Record<string, unknown>;
  /** Table columns: header and the cell text (short, for a person). */
  columns: Array<[header: string, cell: (row: T) => string]>;
}

/** Borderless: columns separated by two spaces, as `ps` or `kubectl get` print them. */
const PLAIN_CHARS = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "  ",
};

/** Whether lists go out as JSON lines: asked for, or nobody is reading a terminal. */
export function wantsJson(flag: boolean | undefined): boolean {
  return Boolean(flag) || !process.stdout.isTTY;
}

export function printList<T>(rows: T[], format: ListFormat<T>, opts: { json?: boolean }): void {
  if (wantsJson(opts.json)) {
    process.stdout.write(rows.map((row) => `${JSON.stringify(format.json(row))}\n`).join(""));
    return;
  }
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  process.stdout.write(`${formatTable(rows, format.columns)}\n`);
}

export function formatTable<T>(rows: T[], columns: ListFormat<T>["columns"]): string {
  const Table = loadTable();
  const table = new Table({
    head: columns.map(([header]) => header.toUpperCase()),
    chars: PLAIN_CHARS,
    // No colours (they would end up in a pasted ticket) and no padding: `middle` separates.
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  for (const row of rows) table.push(columns.map(([, cell]) => cell(row)));
  // cli-table3 pads the last column too; trailing blanks only get in the way of a copy.
  return table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

/** Seconds since the epoch as ISO-8601 (for JSON), or undefined. */
export function isoSeconds(seconds: number | undefined): string | undefined {
  return seconds === undefined || seconds === 0 ? undefined : new Date(seconds * 1000).toISOString();
}

/** A time for a table cell: ISO-8601 to the second, UTC; "-" for none. */
export function shortTime(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
