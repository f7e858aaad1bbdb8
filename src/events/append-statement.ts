import { z } from "zod";
import type { SqlQueryable } from "../db/sql-client";
import { STATE_SCHEMA_VERSION, type WorkflowState } from "../state/workflow-state";
import type { IdentifiedEvent } from "./append-rules";
import { bigintColumn, parseRow, timestampColumn } from "./rows";
import {
  type AppendResult,
  crossesSnapshotBoundary,
  DEFAULT_STREAM_TYPE,
  type StoredEventRef,
} from "./store";
import {
  DELIVERED_COLUMN,
  deliveredCte,
  deliveriesParameter,
  parseRecordedDelivery,
  type RecordedDelivery,
  recordedCte,
  type WebhookDelivery,
} from "./webhook-deliveries";

// The append: one statement, one round trip, atomic without BEGIN/COMMIT. It looks up
// the caller-chosen event ids not known to be free, and only if none of them is stored
// it moves (or creates) the stream's head, provided the head is still at the version
// the append was planned against, inserts the events and writes a snapshot when one is
// due. Whatever it did not write, it says why: the ids it found, or where the head is.
// An append that carries webhook deliveries probes and records them the same way (the
// parts are in webhook-deliveries.ts): nothing is written if one is already recorded.

/** An append whose version and state after are settled, ready to be written. */
export interface PlannedAppend {
  streamId: string;
  /** The version the events follow; the head must still be there. 0 creates the stream. */
  base: number;
  events: readonly IdentifiedEvent[];
  /** The type a new stream gets (default `workflow`), or that an existing one must have; undefined: any. */
  streamType: string | undefined;
  /** The stream's state after the events: its status goes on the head, and it is the snapshot when one is due. */
  stateAfter: WorkflowState;
  /**
   * Caller-chosen ids that may already be stored, the events' own and others the caller
   * wants answered: if any of them is, nothing is written and they are reported.
   */
  probeIds: readonly string[];
  /**
   * Webhook deliveries: those that may already be recorded (`probe`: if one is, nothing
   * is written and they are reported) and those to record with the events (`record`).
   */
  deliveries?: {
    probe: readonly Pick<WebhookDelivery, "source" | "webhookId">[];
    record: readonly RecordedDelivery[];
  };
}

export type WriteOutcome =
  | { kind: "written"; result: AppendResult }
  /** Some probed ids are stored (where, each): nothing was written. `head` as in `moved`, when known. */
  | { kind: "ids_stored"; stored: StoredEventRef[]; head: StreamAt | null }
  /** Some probed webhook deliveries are recorded (as they were): nothing was written. */
  | { kind: "delivered"; recorded: RecordedDelivery[]; head: StreamAt | null }
  /**
   * The head was not at `base` (or not of the stream type named): nothing was written.
   * `head` is the head as the statement found it, null when the stream did not exist;
   * a writer that committed while the statement ran may not be in it yet.
   */
  | { kind: "moved"; head: StreamAt | null };

/** Where a stream's head is, and its type. */
export interface StreamAt {
  version: number;
  streamType: string;
}

const StoredRef = z.object({ event_id: z.string(), stream_id: z.string(), version: bigintColumn });

const AnswerRow = z.object({
  stream_type: z.string().nullable(),
  version: bigintColumn.nullable(),
  occurred_at: timestampColumn.nullable(),
  global_positions: z.array(bigintColumn).nullable(),
  stored: z.array(StoredRef).nullable(),
  current: z.object({ version: bigintColumn, stream_type: z.string() }).nullable(),
  delivered: z.array(z.unknown()).nullable().optional(),
});

// Webhook deliveries ride on parameter $10 (webhook-deliveries.ts): probed before the
// head moves, recorded with it. Appends without deliveries use the statements without them.
const NO_DELIVERY_RECORDED = `AND NOT EXISTS (SELECT 1 FROM delivered)`;

const newHead = (deliveries: boolean) => `
  INSERT INTO workflow_streams (stream_id, stream_type, version, status)
  SELECT $1::uuid, coalesce($2::text, '${DEFAULT_STREAM_TYPE}'), $3::bigint, $8::text
   WHERE NOT EXISTS (SELECT 1 FROM probe) ${deliveries ? NO_DELIVERY_RECORDED : ""}
  ON CONFLICT (stream_id) DO NOTHING
  RETURNING stream_id, stream_type, version`;

const movedHead = (deliveries: boolean) => `
  UPDATE workflow_streams SET version = $3::bigint, status = $8::text, updated_at = now()
   WHERE stream_id = $1::uuid AND version = $4::bigint AND ($2::text IS NULL OR stream_type = $2::text)
     AND NOT EXISTS (SELECT 1 FROM probe) ${deliveries ? NO_DELIVERY_RECORDED : ""}
  RETURNING stream_id, stream_type, version`;

/** The statement for a new stream (base 0) or an existing one, with or without webhook deliveries. */
const statement = (head: (deliveries: boolean) => string, deliveries: boolean) => `
  WITH probe AS (
    SELECT event_id, stream_id, version FROM workflow_events WHERE event_id = ANY($9::uuid[])
  ),
  ${deliveries ? `${deliveredCte("$10")},` : ""}
  head AS (${head(deliveries)}),
  ${deliveries ? `${recordedCte("$10")},` : ""}
  inserted AS (
    INSERT INTO workflow_events (event_id, stream_id, stream_type, version, event_type, event, metadata)
    SELECT (e.item->>'event_id')::uuid, head.stream_id, head.stream_type, $4::bigint + e.ord,
           e.item->'event'->>'type', e.item->'event', e.item->'metadata'
      FROM head, jsonb_array_elements($5::jsonb) WITH ORDINALITY AS e(item, ord)
    RETURNING version, global_position, occurred_at
  ),
  snapshot AS (  -- a data-modifying CTE runs whether or not it is read
    INSERT INTO workflow_snapshots (stream_id, version, schema_version, state)
    SELECT head.stream_id, head.version, $6::integer, $7::jsonb FROM head WHERE $7::jsonb IS NOT NULL
    ON CONFLICT (stream_id, version)
    DO UPDATE SET schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, created_at = now()
    RETURNING version
  )
  SELECT (SELECT stream_type FROM head) AS stream_type,
         (SELECT version FROM head) AS version,
         (SELECT min(occurred_at) FROM inserted) AS occurred_at,
         (SELECT array_agg(global_position ORDER BY version) FROM inserted) AS global_positions,
         (SELECT json_agg(json_build_object('event_id', event_id, 'stream_id', stream_id, 'version', version))
            FROM probe) AS stored,
         (SELECT json_build_object('version', version, 'stream_type', stream_type)
            FROM workflow_streams WHERE stream_id = $1::uuid) AS current
         ${deliveries ? `, ${DELIVERED_COLUMN}` : ""}`;

const STATEMENTS = {
  newStream: statement(newHead, false),
  existingStream: statement(movedHead, false),
  newStreamWithDeliveries: statement(newHead, true),
  existingStreamWithDeliveries: statement(movedHead, true),
};

/** Writes `append` with one statement, or says why it wrote nothing. Database errors are the caller's to map. */
export async function writeAppend(db: SqlQueryable, append: PlannedAppend): Promise<WriteOutcome> {
  const count = append.events.length;
  const version = append.base + count;
  const snapshot = crossesSnapshotBoundary(append.base, version) ? append.stateAfter : null;
  const { deliveries } = append;
  const withDeliveries = deliveries !== undefined && deliveries.probe.length + deliveries.record.length > 0;
  const text = withDeliveries
    ? append.base === 0
      ? STATEMENTS.newStreamWithDeliveries
      : STATEMENTS.existingStreamWithDeliveries
    : append.base === 0
      ? STATEMENTS.newStream
      : STATEMENTS.existingStream;
  const result = await db.query(text, [
    append.streamId,
    append.streamType ?? null,
    version,
    append.base,
    // The events as one JSON array: one parameter, however many events.
    JSON.stringify(
      append.events.map((item) => ({
        event_id: item.event_id,
        event: item.event,
        metadata: item.metadata ?? {},
      })),
    ),
    STATE_SCHEMA_VERSION,
    snapshot === null ? null : JSON.stringify(snapshot),
    append.stateAfter.status,
    append.probeIds,
    ...(withDeliveries ? [deliveriesParameter(deliveries.probe, deliveries.record)] : []),
  ]);
  const answer = parseRow(AnswerRow, result.rows[0], "append result");
  const head =
    answer.current === null
      ? null
      : { version: answer.current.version, streamType: answer.current.stream_type };
  if (answer.stored !== null && answer.stored.length > 0)
    return { kind: "ids_stored", stored: answer.stored, head };
  if (answer.delivered !== null && answer.delivered !== undefined && answer.delivered.length > 0)
    return { kind: "delivered", recorded: answer.delivered.map(parseRecordedDelivery), head };
  if (answer.stream_type === null || answer.version === null) return { kind: "moved", head };
  return {
    kind: "written",
    result: {
      streamId: append.streamId,
      streamType: answer.stream_type,
      version: answer.version,
      versions: append.events.map((_, index) => append.base + index + 1),
      eventIds: append.events.map((item) => item.event_id),
      idempotent: false,
      snapshotVersion: snapshot === null ? null : version,
      ...(answer.occurred_at === null ? {} : { occurredAt: answer.occurred_at }),
      ...(answer.global_positions === null ? {} : { globalPositions: answer.global_positions }),
    },
  };
}
