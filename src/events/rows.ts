import { z } from "zod";
import { WorkflowStatus } from "../state/workflow-state";
import type { StoredSnapshot, StreamHead } from "./store";
import { CorruptRow } from "./store-errors";
import { StoredEvent } from "./types";
import { describeIssues } from "./wire";

// The rows the statements read back, checked: a row that does not match is CorruptRow,
// never a value passed on. A bigint arrives as a number (inside JSON) or as text (a
// column), a timestamp as a Date or as text; both are read the same way.

export const bigintColumn = z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number);
export const timestampColumn = z
  .union([z.date(), z.string()])
  .transform((value) => new Date(value).toISOString());

const streamHeadColumns = {
  stream_id: z.string(),
  stream_type: z.string(),
  version: bigintColumn,
  status: WorkflowStatus,
  created_at: timestampColumn,
  updated_at: timestampColumn,
};

export const StreamHeadRow: z.ZodType<StreamHead, unknown> = z.object(streamHeadColumns);

/** A head with created_at to the microsecond in UTC (the newest-first listing's key). */
export const NewestStreamRow = z.object({
  ...streamHeadColumns,
  created_key: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
});

export const SnapshotRow: z.ZodType<StoredSnapshot, unknown> = z.object({
  stream_id: z.string(),
  version: bigintColumn,
  schema_version: z.number().int(),
  state: z.unknown(),
  created_at: timestampColumn,
});

/** A workflow_events row as the statements select it (the feed adds its transaction). */
export const EventRow = z.object({
  global_position: bigintColumn,
  event_id: z.string(),
  stream_id: z.string(),
  stream_type: z.string(),
  version: bigintColumn,
  event: z.unknown(),
  metadata: z.unknown(),
  occurred_at: timestampColumn,
});

export function parseRow<T extends z.ZodType>(schema: T, row: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(row);
  if (!parsed.success)
    throw new CorruptRow(`A ${what} row has an unexpected shape: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

export function toStoredEvent(row: unknown): StoredEvent {
  const parsed = parseRow(EventRow, row, "workflow_events");
  const event = StoredEvent.safeParse(parsed);
  if (!event.success) {
    throw new CorruptRow(
      `Event at position ${parsed.global_position} of stream ${parsed.stream_id} does not match the event schema: ${describeIssues(event.error)}`,
    );
  }
  return event.data;
}
