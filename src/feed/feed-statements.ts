import { z } from "zod";
import { bigintColumn, EventRow } from "../events/rows";
import { CorruptRow, DatabaseError } from "../events/store-errors";
import { StoredEvent } from "../events/types";
import { describeIssues } from "../events/wire";
import { encodeCheckpoint, FEED_START, type FeedCheckpoint } from "./checkpoint";
import type { FeedEvent } from "./feed-event";

// The feed's two statements. Both see only rows of transactions older than every
// transaction still running (transaction_id < pg_snapshot_xmin(pg_current_snapshot())),
// evaluated by each statement: a row that commits later belongs to a transaction at or
// above that horizon, so it sorts after everything either statement returned, and a
// reader that continues after the last checkpoint it got never skips it.

/** What the feed needs of the driver: one statement and its rows (a Pool is one). */
export interface FeedDatabase {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

/** Most events one read returns, whatever limit is asked for. */
export const MAX_FEED_PAGE = 1000;

export interface FeedQuery {
  /** Events after this checkpoint. */
  after: FeedCheckpoint;
  limit: number;
  /** Only events of streams of these types; undefined for all. */
  streamTypes?: readonly string[] | undefined;
  /** Only events of these types; undefined for all. */
  eventTypes?: readonly string[] | undefined;
  /** No event after this checkpoint; undefined for up to the horizon. */
  through?: FeedCheckpoint | undefined;
}

const HORIZON = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())";
// The transaction id is selected as text (the driver has no xid8 parser) under another
// name: ORDER BY transaction_id would otherwise sort by the text, putting 999 after 1000.

const transactionColumn = z.string().regex(/^\d+$/).transform(BigInt);
const FeedRow = EventRow.extend({ transaction: transactionColumn });
const HeadRow = z.object({ transaction: transactionColumn, global_position: bigintColumn });

/** Up to `limit` events after `query.after`, in feed order. */
export async function readFeed(db: FeedDatabase, query: FeedQuery): Promise<FeedEvent[]> {
  const limit = Math.min(Math.max(Math.trunc(query.limit), 1), MAX_FEED_PAGE);
  const rows = await runStatement(
    db,
    `SELECT transaction_id::text AS transaction, global_position, event_id, stream_id, stream_type,
            version, event, metadata, occurred_at
       FROM workflow_events
      WHERE ${HORIZON}
        AND (transaction_id, global_position) > ($1::xid8, $2::bigint)
        AND ($3::xid8 IS NULL OR (transaction_id, global_position) <= ($3::xid8, $4::bigint))
        AND ($5::text[] IS NULL OR stream_type = ANY ($5::text[]))
        AND ($6::text[] IS NULL OR event_type = ANY ($6::text[]))
      ORDER BY transaction_id, global_position
      LIMIT $7`,
    [
      String(query.after.transactionId),
      query.after.globalPosition,
      query.through === undefined ? null : String(query.through.transactionId),
      query.through?.globalPosition ?? null,
      query.streamTypes === undefined ? null : [...query.streamTypes],
      query.eventTypes === undefined ? null : [...query.eventTypes],
      limit,
    ],
    "read the feed",
  );
  return rows.map(toFeedEvent);
}

/** The checkpoint of the feed's newest event (FEED_START when it has none): where "now" is. */
export async function feedHead(db: FeedDatabase): Promise<FeedCheckpoint> {
  const rows = await runStatement(
    db,
    `SELECT transaction_id::text AS transaction, global_position
       FROM workflow_events
      WHERE ${HORIZON}
      ORDER BY transaction_id DESC, global_position DESC
      LIMIT 1`,
    [],
    "read the feed's head",
  );
  const row = rows[0];
  if (row === undefined) return FEED_START;
  const parsed = HeadRow.safeParse(row);
  if (!parsed.success)
    throw new CorruptRow(`The feed's head row is malformed: ${describeIssues(parsed.error)}`);
  return { transactionId: parsed.data.transaction, globalPosition: parsed.data.global_position };
}

function toFeedEvent(row: unknown): FeedEvent {
  const parsed = FeedRow.safeParse(row);
  if (!parsed.success) {
    throw new CorruptRow(`A workflow_events row has an unexpected shape: ${describeIssues(parsed.error)}`);
  }
  const { transaction, ...stored } = parsed.data;
  const event = StoredEvent.safeParse(stored);
  if (!event.success) {
    throw new CorruptRow(
      `Event at position ${stored.global_position} of stream ${stored.stream_id} does not match the event schema: ${describeIssues(event.error)}`,
    );
  }
  const checkpoint = encodeCheckpoint({
    transactionId: transaction,
    globalPosition: stored.global_position,
  });
  return { ...event.data, checkpoint };
}

/** One statement's rows; a driver failure becomes DatabaseError ("The database failed to <what>: …"). */
export async function runStatement(
  db: FeedDatabase,
  text: string,
  values: unknown[],
  what: string,
): Promise<unknown[]> {
  try {
    return (await db.query(text, values)).rows;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseError(`The database failed to ${what}: ${reason}`, { cause: error });
  }
}
