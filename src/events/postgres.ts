import type { Pool } from "@neondatabase/serverless";
import { z } from "zod";
import { applyEvents } from "../state/apply-event";
import {
  emptyWorkflowState,
  STATE_SCHEMA_VERSION,
  type WorkflowState,
  WorkflowStatus,
} from "../state/workflow-state";
import {
  earlierAppend,
  exactExpectedVersion,
  expectedVersionConflict,
  type IdentifiedEvent,
  prepareAppend,
  repeatedAppend,
  streamTypeConflict,
} from "./append-rules";
import { StateRebuilder } from "./replay";
import {
  type AppendRequest,
  type AppendResult,
  crossesSnapshotBoundary,
  DEFAULT_STREAM_TYPE,
  type EventStore,
  type ListStreamsQuery,
  type LoadEventsOptions,
  type StoredEventRef,
  type StoredSnapshot,
  type StreamHead,
} from "./store";
import {
  ConcurrencyConflict,
  CorruptRow,
  DatabaseError,
  EventStoreError,
  IdempotencyConflict,
} from "./store-errors";
import { StoredEvent } from "./types";
import { describeIssues } from "./wire";

/** Most events one read returns, whatever limit is asked for. */
export const MAX_READ_LIMIT = 1000;

/**
 * How often an append with `any` or `stream_exists` re-reads the head and tries
 * again when another writer moved the stream in between. Callers that need no
 * retries at all (the stream actor) append with an exact expected version.
 */
const MAX_OPTIMISTIC_ATTEMPTS = 25;

const bigintColumn = z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number);
const timestampColumn = z.union([z.date(), z.string()]).transform((value) => new Date(value).toISOString());

const StreamHeadRow = z.object({
  stream_id: z.string(),
  stream_type: z.string(),
  version: bigintColumn,
  status: WorkflowStatus,
  created_at: timestampColumn,
  updated_at: timestampColumn,
});

const EventRow = z.object({
  global_position: bigintColumn,
  event_id: z.string(),
  stream_id: z.string(),
  stream_type: z.string(),
  version: bigintColumn,
  event: z.unknown(),
  metadata: z.unknown(),
  occurred_at: timestampColumn,
});

const SnapshotRow = z.object({
  stream_id: z.string(),
  version: bigintColumn,
  schema_version: z.number().int(),
  state: z.unknown(),
  created_at: timestampColumn,
});

const ExistingIdRow = z.object({ event_id: z.string(), stream_id: z.string(), version: bigintColumn });

const AppendedRow = z.object({
  stream_type: z.string(),
  version: bigintColumn,
  occurred_at: timestampColumn,
  global_positions: z.array(bigintColumn),
});

const UNIQUE_VIOLATION = "23505";

/** PostgreSQL error fields the driver exposes (node-postgres DatabaseError shape). */
const PgErrorShape = z.object({ code: z.string(), constraint: z.string().optional() }).loose();

/** The EventStore on PostgreSQL through @neondatabase/serverless. */
export class PgEventStore implements EventStore {
  private readonly rebuilder: StateRebuilder;

  constructor(private readonly pool: Pool) {
    this.rebuilder = new StateRebuilder(this);
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    const prepared = prepareAppend(request);
    const eventIds = prepared.events.map((item) => item.event_id);
    if (prepared.callerIds.length > 0 && request.eventIdsChecked !== true) {
      const earlier = await this.findEarlierAppend(request.streamId, eventIds);
      if (earlier) return earlier;
    }
    for (let attempt = 1; ; attempt++) {
      const plan = await this.planAppend(request, prepared.events.length);
      try {
        const written = await this.writeAppend(request, prepared.events, plan);
        if (written) return written;
      } catch (error) {
        const unique = uniqueViolation(error);
        if (unique === "workflow_events_event_id_key") {
          // A concurrent append stored some of these ids first: answer as a retry would.
          const earlier = await this.findEarlierAppend(request.streamId, eventIds);
          if (earlier) return earlier;
          throw new IdempotencyConflict(request.streamId, eventIds);
        }
        if (unique === undefined) throw asStoreError(error, "append");
        // Another writer took the version (it bypassed the head): treat as a moved stream.
      }
      const head = await this.getStreamHead(request.streamId);
      const mismatch = streamTypeConflict(request.streamId, request.streamType, head?.stream_type);
      if (mismatch) throw mismatch;
      const exact = exactExpectedVersion(request.expectedVersion) !== undefined;
      if (exact || attempt >= MAX_OPTIMISTIC_ATTEMPTS) {
        throw new ConcurrencyConflict(request.streamId, request.expectedVersion, head?.version ?? 0);
      }
    }
  }

  async loadEvents(streamId: string, options: LoadEventsOptions = {}): Promise<StoredEvent[]> {
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? MAX_READ_LIMIT), 1), MAX_READ_LIMIT);
    const backward = options.direction === "backward";
    const from = options.fromVersion ?? (backward ? Number.MAX_SAFE_INTEGER : 1);
    const result = await this.query(
      `SELECT global_position, event_id, stream_id, stream_type, version, event, metadata, occurred_at
         FROM workflow_events
        WHERE stream_id = $1 AND version ${backward ? "<=" : ">="} $2
        ORDER BY version ${backward ? "DESC" : "ASC"}
        LIMIT $3`,
      [streamId, from, limit],
      "load events",
    );
    return result.rows.map((row) => toStoredEvent(row));
  }

  async getStreamHead(streamId: string): Promise<StreamHead | null> {
    const result = await this.query(
      "SELECT stream_id, stream_type, version, status, created_at, updated_at FROM workflow_streams WHERE stream_id = $1",
      [streamId],
      "read stream head",
    );
    const row = result.rows[0];
    return row === undefined ? null : parseRow(StreamHeadRow, row, "workflow_streams");
  }

  async getLatestSnapshot(streamId: string, atOrBelowVersion?: number): Promise<StoredSnapshot | null> {
    const result = await this.query(
      `SELECT stream_id, version, schema_version, state, created_at
         FROM workflow_snapshots
        WHERE stream_id = $1 AND version <= $2
        ORDER BY version DESC
        LIMIT 1`,
      [streamId, atOrBelowVersion ?? Number.MAX_SAFE_INTEGER],
      "read snapshot",
    );
    const row = result.rows[0];
    return row === undefined ? null : parseRow(SnapshotRow, row, "workflow_snapshots");
  }

  /**
   * Works out the version the write will start from and the state after it. With a
   * trusted `stateAfter` and an exact expected version nothing needs reading; otherwise
   * the current state is rebuilt (snapshot + tail) and the events are checked against
   * the state rules, so no writer can put an invalid sequence into the log.
   */
  private async planAppend(request: AppendRequest, count: number): Promise<AppendPlan> {
    const exact = exactExpectedVersion(request.expectedVersion);
    if (exact !== undefined && request.stateAfter?.version === exact + count) {
      return { base: exact, stateAfter: request.stateAfter };
    }
    const head = await this.getStreamHead(request.streamId);
    const actual = head?.version ?? 0;
    const conflict =
      streamTypeConflict(request.streamId, request.streamType, head?.stream_type) ??
      expectedVersionConflict(request.streamId, request.expectedVersion, actual);
    if (conflict) throw conflict;
    const current =
      head === null || actual === 0
        ? emptyWorkflowState()
        : (await this.rebuilder.rebuildFromHead(head)).state;
    return {
      base: actual,
      stateAfter: applyEvents(
        current,
        request.events.map((e) => e.event),
      ),
    };
  }

  /** One statement: move (or create) the head only if it is still at `base`, insert the events, maybe snapshot. */
  private async writeAppend(
    request: AppendRequest,
    events: IdentifiedEvent[],
    plan: AppendPlan,
  ): Promise<AppendResult | undefined> {
    const count = events.length;
    const eventIds = events.map((item) => item.event_id);
    const version = plan.base + count;
    const snapshot = crossesSnapshotBoundary(plan.base, version) ? plan.stateAfter : null;
    const head =
      plan.base === 0
        ? `INSERT INTO workflow_streams (stream_id, stream_type, version, status)
           VALUES ($1::uuid, coalesce($2::text, '${DEFAULT_STREAM_TYPE}'), $3::bigint, $8::text)
           ON CONFLICT (stream_id) DO NOTHING
           RETURNING stream_id, stream_type, version`
        : `UPDATE workflow_streams SET version = $3::bigint, status = $8::text, updated_at = now()
            WHERE stream_id = $1::uuid AND version = $4::bigint AND ($2::text IS NULL OR stream_type = $2::text)
           RETURNING stream_id, stream_type, version`;
    const result = await this.query(
      `WITH head AS (${head}),
       inserted AS (
         INSERT INTO workflow_events (event_id, stream_id, stream_type, version, event_type, event, metadata)
         SELECT (e.item->>'event_id')::uuid, head.stream_id, head.stream_type, $4::bigint + e.ord,
                e.item->'event'->>'type', e.item->'event', e.item->'metadata'
           FROM head, jsonb_array_elements($5::jsonb) WITH ORDINALITY AS e(item, ord)
         RETURNING version, global_position, occurred_at
       ),
       snapshot AS (
         INSERT INTO workflow_snapshots (stream_id, version, schema_version, state)
         SELECT head.stream_id, head.version, $6::integer, $7::jsonb FROM head WHERE $7::jsonb IS NOT NULL
         ON CONFLICT (stream_id, version)
         DO UPDATE SET schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, created_at = now()
         RETURNING version
       )
       SELECT head.stream_type, head.version,
              (SELECT min(occurred_at) FROM inserted) AS occurred_at,
              (SELECT array_agg(global_position ORDER BY version) FROM inserted) AS global_positions,
              (SELECT count(*) FROM snapshot) AS snapshots
         FROM head`,
      [
        request.streamId,
        request.streamType ?? null,
        version,
        plan.base,
        // The events as one JSON array: one parameter, however many events.
        JSON.stringify(
          events.map((item) => ({
            event_id: item.event_id,
            event: item.event,
            metadata: item.metadata ?? {},
          })),
        ),
        STATE_SCHEMA_VERSION,
        snapshot === null ? null : JSON.stringify(snapshot),
        plan.stateAfter.status,
      ],
      "append",
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    const appended = parseRow(AppendedRow, row, "append result");
    return {
      streamId: request.streamId,
      streamType: appended.stream_type,
      version: appended.version,
      versions: eventIds.map((_, index) => plan.base + index + 1),
      eventIds,
      idempotent: false,
      snapshotVersion: snapshot === null ? null : version,
      occurredAt: appended.occurred_at,
      globalPositions: appended.global_positions,
    };
  }

  /** The answer to a repeated append (see earlierAppend), undefined when none of its ids is stored. */
  private async findEarlierAppend(streamId: string, eventIds: string[]): Promise<AppendResult | undefined> {
    const stored = await this.findStoredEvents(eventIds);
    const earlier = earlierAppend(
      streamId,
      eventIds,
      new Map(stored.map((ref) => [ref.event_id, ref] as const)),
    );
    if (earlier === undefined) return undefined;
    if (earlier instanceof IdempotencyConflict) throw earlier;
    const head = await this.getStreamHead(streamId);
    return repeatedAppend(streamId, head?.stream_type ?? DEFAULT_STREAM_TYPE, eventIds, earlier);
  }

  /** Answers when the database does. */
  async ping(): Promise<void> {
    await this.query("SELECT 1", [], "answer a ping");
  }

  async findStoredEvents(eventIds: readonly string[]): Promise<StoredEventRef[]> {
    if (eventIds.length === 0) return [];
    const result = await this.query(
      "SELECT event_id, stream_id, version FROM workflow_events WHERE event_id = ANY($1::uuid[])",
      [eventIds],
      "look up event ids",
    );
    return result.rows.map((row) => parseRow(ExistingIdRow, row, "workflow_events"));
  }

  async listStreams(query: ListStreamsQuery): Promise<StreamHead[]> {
    const result = await this.query(
      `SELECT stream_id, stream_type, version, status, created_at, updated_at
         FROM workflow_streams
        WHERE ($1::text IS NULL OR stream_type = $1::text)
          AND ($2::text IS NULL OR status = $2::text)
          AND ($3::uuid IS NULL OR stream_id > $3::uuid)
          AND version > 0
        ORDER BY stream_id
        LIMIT $4`,
      [
        query.streamType ?? null,
        query.status ?? null,
        query.afterStreamId ?? null,
        Math.min(query.limit, MAX_READ_LIMIT),
      ],
      "list streams",
    );
    return result.rows.map((row) => parseRow(StreamHeadRow, row, "workflow_streams"));
  }

  private async query(text: string, values: unknown[], what: string) {
    try {
      return await this.pool.query(text, values);
    } catch (error) {
      if (uniqueViolation(error) !== undefined) throw error;
      throw asStoreError(error, what);
    }
  }
}

interface AppendPlan {
  base: number;
  stateAfter: WorkflowState;
}

function toStoredEvent(row: unknown): StoredEvent {
  const parsed = parseRow(EventRow, row, "workflow_events");
  const event = StoredEvent.safeParse(parsed);
  if (!event.success) {
    throw new CorruptRow(
      `Event at position ${parsed.global_position} of stream ${parsed.stream_id} does not match the event schema: ${describeIssues(event.error)}`,
    );
  }
  return event.data;
}

function parseRow<T extends z.ZodType>(schema: T, row: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(row);
  if (!parsed.success)
    throw new CorruptRow(`A ${what} row has an unexpected shape: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

function uniqueViolation(error: unknown): string | undefined {
  const parsed = PgErrorShape.safeParse(error);
  if (!parsed.success || parsed.data.code !== UNIQUE_VIOLATION) return undefined;
  return parsed.data.constraint ?? "unknown";
}

function asStoreError(error: unknown, what: string): EventStoreError {
  if (error instanceof EventStoreError) return error;
  return new DatabaseError(`The database failed to ${what}: ${describeCause(error)}`, { cause: error });
}

/** A readable reason, also for the WebSocket ErrorEvents the driver rejects with. */
function describeCause(error: unknown): string {
  if (error instanceof Error) return error.message;
  const message = (error as { message?: unknown } | null)?.message;
  if (typeof message === "string" && message !== "") return message;
  const type = (error as { type?: unknown } | null)?.type;
  if (typeof type === "string")
    return `WebSocket ${type} (the connection to the database or its proxy failed)`;
  return String(error);
}
