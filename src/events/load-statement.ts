import { z } from "zod";
import type { SqlQueryable } from "../db/sql-client";
import { PAGE_BYTES, withinPageBytes } from "./page-bytes";
import { parseRow, SnapshotRow, StreamHeadRow, toStoredEvent } from "./rows";
import type { LoadedStream } from "./store";

// What a rebuild needs, in one statement: the stream's head, its newest snapshot at or
// below the version wanted, and the events after that snapshot up to it (the first
// page of them, bounded in bytes like every read of events: page-bytes.ts). A cold actor
// loads with this and nothing else, unless the snapshot cannot be used or the tail is
// longer than a page (see StateRebuilder).

/** Events of the tail returned with the head; a longer tail is read on in pages. */
export const LOADED_TAIL_LIMIT = 1000;

const AnswerRow = z.object({
  head: z.unknown(),
  snapshot: z.unknown(),
  tail: z.array(z.unknown()),
});

const LOAD_STATEMENT = `
  WITH head AS (
    SELECT stream_id, stream_type, version, status, created_at, updated_at
      FROM workflow_streams WHERE stream_id = $1::uuid
  ),
  target AS (SELECT least(version, coalesce($2::bigint, version)) AS version FROM head),
  snapshot AS (
    SELECT s.stream_id, s.version, s.schema_version, s.state, s.created_at
      FROM workflow_snapshots s, target
     WHERE s.stream_id = $1::uuid AND s.version <= target.version
     ORDER BY s.version DESC
     LIMIT 1
  ),
  tail AS (${withinPageBytes(
    `SELECT e.global_position, e.event_id, e.stream_id, e.stream_type, e.version, e.event, e.metadata, e.occurred_at
       FROM workflow_events e, target
      WHERE e.stream_id = $1::uuid
        AND e.version > coalesce((SELECT version FROM snapshot), 0) AND e.version <= target.version
      ORDER BY e.version
      LIMIT $3`,
    "ASC",
    "$4",
  )})
  SELECT (SELECT row_to_json(head) FROM head) AS head,
         (SELECT row_to_json(snapshot) FROM snapshot) AS snapshot,
         (SELECT coalesce(json_agg(tail ORDER BY tail.version), '[]'::json) FROM tail) AS tail`;

/**
 * The stream `streamId` as a rebuild to `atVersion` (default: its head) starts from;
 * null when the stream has no head. A version the stream cannot have is left to the
 * rebuild to refuse.
 */
export async function loadStream(
  db: SqlQueryable,
  streamId: string,
  atVersion?: number,
): Promise<LoadedStream | null> {
  const target =
    atVersion !== undefined && Number.isSafeInteger(atVersion) && atVersion >= 0 ? atVersion : null;
  const result = await db.query(LOAD_STATEMENT, [streamId, target, LOADED_TAIL_LIMIT, PAGE_BYTES]);
  const answer = parseRow(AnswerRow, result.rows[0], "stream load");
  if (answer.head === null) return null;
  return {
    head: parseRow(StreamHeadRow, answer.head, "workflow_streams"),
    snapshot: answer.snapshot === null ? null : parseRow(SnapshotRow, answer.snapshot, "workflow_snapshots"),
    events: answer.tail.map((row) => toStoredEvent(row)),
  };
}
