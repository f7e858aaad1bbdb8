/**
 * One JSON line per thing an operator must be able to find later (a 5xx, a skipped
 * snapshot, a refused webhook), so `wrangler tail` and Workers Logs can filter on its
 * fields. Only what helps find the cause: never a token, a secret or an event's body.
 */
export interface LogEntry {
  /** What happened, as a stable snake_case name: "request_failed", "snapshot_skipped", ... */
  event: string;
  level: "error" | "warn" | "info";
  stream_id?: string;
  /** The failure's code, as clients see it ("unavailable", "corrupt_data", ...). */
  code?: string;
  /** The underlying reason, for the operator (a driver message, a validation issue). */
  cause?: string;
  [field: string]: unknown;
}

export function log(entry: LogEntry): void {
  const line = JSON.stringify({ time: new Date().toISOString(), ...entry });
  if (entry.level === "error") console.error(line);
  else if (entry.level === "warn") console.warn(line);
  else console.log(line);
}
