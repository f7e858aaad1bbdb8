import { z } from "zod";
import type { SqlQueryable } from "../db/sql-client";
import { applyEvents } from "../state/apply-event";
import { InvalidEventSequence } from "../state/invalid-event-sequence";
import { emptyWorkflowState, type WorkflowState } from "../state/workflow-state";
import {
  earlierAppend,
  exactExpectedVersion,
  expectedVersionConflict,
  type IdentifiedEvents,
  prepareAppend,
  repeatedAppend,
  streamTypeConflict,
} from "./append-rules";
import { type PlannedAppend, type WriteOutcome, writeAppend } from "./append-statement";
import { loadStream } from "./load-statement";
import { PAGE_BYTES, withinPageBytes } from "./page-bytes";
import { StateRebuilder } from "./replay";
import { bigintColumn, NewestStreamRow, parseRow, SnapshotRow, StreamHeadRow, toStoredEvent } from "./rows";
import {
  type AppendRequest,
  type AppendResult,
  DEFAULT_STREAM_TYPE,
  type EventStore,
  type ListStreamsQuery,
  type LoadEventsOptions,
  type LoadedStream,
  type NewestStreamsKey,
  type NewestStreamsPage,
  type NewestStreamsQuery,
  type StoredEventRef,
  type StoredSnapshot,
  type StreamHead,
} from "./store";
import {
  ConcurrencyConflict,
  DatabaseError,
  EventStoreError,
  IdempotencyConflict,
  StreamTypeMismatch,
} from "./store-errors";
import type { StoredEvent } from "./types";
import {
  DELIVERY_KEY_CONSTRAINT,
  findDeliveries,
  type RecordedDelivery,
  type WebhookDelivery,
} from "./webhook-deliveries";

/** Most events one read returns, whatever limit is asked for. */
export const MAX_READ_LIMIT = 1000;

/**
 * How often an append with `any` or `stream_exists` re-reads the head and tries
 * again when another writer moved the stream in between. Callers that need no
 * retries at all (the stream actor) append with an exact expected version.
 */
const MAX_OPTIMISTIC_ATTEMPTS = 25;

const ExistingIdRow = z.object({ event_id: z.string(), stream_id: z.string(), version: bigintColumn });

const UNIQUE_VIOLATION = "23505";
const EVENT_ID_KEY = "workflow_events_event_id_key";

/** PostgreSQL error fields the driver exposes (node-postgres DatabaseError shape). */
const PgErrorShape = z.object({ code: z.string(), constraint: z.string().optional() }).loose();

/** The EventStore on PostgreSQL through @neondatabase/serverless (or anything that sends its statements). */
export class PgEventStore implements EventStore {
  private readonly rebuilder: StateRebuilder;

  constructor(private readonly db: SqlQueryable) {
    this.rebuilder = new StateRebuilder(this);
  }

  /**
   * One statement when the caller gives an exact expected version and the state after
   * (the stream actor's way); otherwise the head is read and the state rebuilt first.
   * Idempotency rides on the statement: it writes nothing when a caller-chosen id is
   * already stored, and says where, so a repeat is answered without a read before.
   */
  async append(request: AppendRequest): Promise<AppendResult> {
    const prepared = prepareAppend(request);
    for (let attempt = 1; ; attempt++) {
      const plan = await this.planOrRepeat(request, prepared);
      if ("repeat" in plan) return plan.repeat;
      const outcome = await this.write({
        streamId: request.streamId,
        base: plan.base,
        events: prepared.events,
        streamType: request.streamType,
        stateAfter: plan.stateAfter,
        probeIds: prepared.callerIds,
      });
      if (outcome.kind === "written") return outcome.result;
      if (outcome.kind === "ids_stored") {
        return this.answerRepeat(request.streamId, prepared, outcome.stored, outcome.head?.streamType);
      }
      // The statement's own view of the head may predate the writer that moved it.
      const head =
        outcome.head !== null && outcome.head.version !== plan.base
          ? outcome.head
          : await this.getStreamHead(request.streamId).then((row) =>
              row === null ? null : { version: row.version, streamType: row.stream_type },
            );
      const mismatch = streamTypeConflict(request.streamId, request.streamType, head?.streamType);
      if (mismatch) throw mismatch;
      const exact = exactExpectedVersion(request.expectedVersion) !== undefined;
      if (exact || attempt >= MAX_OPTIMISTIC_ATTEMPTS) {
        throw new ConcurrencyConflict(request.streamId, request.expectedVersion, head?.version ?? 0);
      }
    }
  }

  /**
   * Writes a planned append with one statement (append-statement.ts). A unique
   * violation from a writer that committed while the statement ran is answered like
   * the statement's own findings: the ids it stored, or a moved head.
   */
  async write(append: PlannedAppend): Promise<WriteOutcome> {
    try {
      return await writeAppend(this.db, append);
    } catch (error) {
      const unique = uniqueViolation(error);
      if (unique === undefined) throw asStoreError(error, "append");
      if (unique === DELIVERY_KEY_CONSTRAINT) {
        // A racing writer recorded one of these webhook deliveries first: answer as the probe would.
        const recorded = await this.findDeliveries([
          ...(append.deliveries?.probe ?? []),
          ...(append.deliveries?.record ?? []),
        ]);
        if (recorded.length === 0) throw asStoreError(error, "append");
        return { kind: "delivered", recorded, head: null };
      }
      // Another writer took one of these versions: the head has moved, however the statement saw it.
      if (unique !== EVENT_ID_KEY) return { kind: "moved", head: null };
      const ids = new Set([...append.probeIds, ...append.events.map((item) => item.event_id)]);
      const stored = await this.findStoredEvents([...ids]);
      if (stored.length === 0) throw asStoreError(error, "append");
      return { kind: "ids_stored", stored, head: null };
    }
  }

  /**
   * Where the write starts from and the state after it, or the answer to a repeat the
   * plan would otherwise refuse: a retry whose expected version is stale by now, or
   * whose events the stream's state no longer takes, is still answered as a repeat.
   */
  private async planOrRepeat(
    request: AppendRequest,
    prepared: IdentifiedEvents,
  ): Promise<AppendPlan | { repeat: AppendResult }> {
    try {
      return await this.planAppend(request, prepared.events.length);
    } catch (error) {
      const refusal =
        error instanceof ConcurrencyConflict ||
        error instanceof StreamTypeMismatch ||
        error instanceof InvalidEventSequence;
      if (!refusal || prepared.callerIds.length === 0) throw error;
      const stored = await this.findStoredEvents(prepared.callerIds);
      if (stored.length === 0) throw error;
      return { repeat: await this.answerRepeat(request.streamId, prepared, stored, undefined) };
    }
  }

  /** The answer to an append some of whose ids are `stored`: a repeat, or IdempotencyConflict. */
  private async answerRepeat(
    streamId: string,
    prepared: IdentifiedEvents,
    stored: StoredEventRef[],
    streamType: string | undefined,
  ): Promise<AppendResult> {
    const eventIds = prepared.events.map((item) => item.event_id);
    const earlier = earlierAppend(
      streamId,
      eventIds,
      new Map(stored.map((ref) => [ref.event_id, ref] as const)),
    );
    if (earlier instanceof IdempotencyConflict) throw earlier;
    if (earlier === undefined)
      throw new IdempotencyConflict(streamId, [...stored.map((ref) => ref.event_id)]);
    const type = streamType ?? (await this.getStreamHead(streamId))?.stream_type ?? DEFAULT_STREAM_TYPE;
    return repeatedAppend(streamId, type, eventIds, earlier);
  }

  async loadEvents(streamId: string, options: LoadEventsOptions = {}): Promise<StoredEvent[]> {
    return (await this.loadEventsPage(streamId, options)).events;
  }

  /**
   * A page of events: at most `limit` (and MAX_READ_LIMIT), and at most PAGE_BYTES of
   * them after the first (page-bytes.ts); `cut` says the bytes ended it before `limit`.
   */
  async loadEventsPage(
    streamId: string,
    options: LoadEventsOptions = {},
  ): Promise<{ events: StoredEvent[]; cut: boolean }> {
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? MAX_READ_LIMIT), 1), MAX_READ_LIMIT);
    const backward = options.direction === "backward";
    const from = options.fromVersion ?? (backward ? Number.MAX_SAFE_INTEGER : 1);
    const order = backward ? "DESC" : "ASC";
    const result = await this.query(
      withinPageBytes(
        `SELECT global_position, event_id, stream_id, stream_type, version, event, metadata, occurred_at
           FROM workflow_events
          WHERE stream_id = $1 AND version ${backward ? "<=" : ">="} $2
          ORDER BY version ${order}
          LIMIT $3`,
        order,
        "$4",
      ),
      [streamId, from, limit, PAGE_BYTES],
      "load events",
    );
    const events = result.rows.map((row) => toStoredEvent(row));
    const fetched = Number((result.rows[0] as { fetched?: unknown } | undefined)?.fetched ?? 0);
    return { events, cut: events.length < fetched };
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

  /** Answers when the database does. */
  async ping(): Promise<void> {
    await this.query("SELECT 1", [], "answer a ping");
  }

  /** The webhook deliveries among `keys` already recorded (webhook-deliveries.ts). */
  async findDeliveries(
    keys: readonly Pick<WebhookDelivery, "source" | "webhookId">[],
  ): Promise<RecordedDelivery[]> {
    return findDeliveries(
      { query: (text, values) => this.query(text, values, "look up webhook deliveries") },
      keys,
    );
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

  async loadStream(streamId: string, atVersion?: number): Promise<LoadedStream | null> {
    try {
      return await loadStream(this.db, streamId, atVersion);
    } catch (error) {
      throw asStoreError(error, "load the stream");
    }
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

  async listNewestStreams(query: NewestStreamsQuery): Promise<NewestStreamsPage> {
    // The row comparison is the index's condition (workflow_streams_newest_idx, migration
    // 0007). created_key is created_at to the microsecond in UTC, one spelling whatever the
    // session's settings, so the next page starts exactly after this one's last stream.
    const result = await this.query(
      `SELECT stream_id, stream_type, version, status, created_at, updated_at,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key
         FROM workflow_streams
        WHERE ($1::text IS NULL OR stream_type = $1::text)
          AND ($2::text IS NULL OR status = $2::text)
          AND ($3::timestamptz IS NULL OR (created_at, stream_id) < ($3::timestamptz, $4::uuid))
          AND version > 0
        ORDER BY created_at DESC, stream_id DESC
        LIMIT $5`,
      [
        query.streamType ?? null,
        query.status ?? null,
        query.before?.createdAt ?? null,
        query.before?.streamId ?? null,
        Math.min(query.limit, MAX_READ_LIMIT),
      ],
      "list streams",
    );
    const streams: StreamHead[] = [];
    let last: NewestStreamsKey | undefined;
    for (const row of result.rows) {
      const { created_key, ...head } = parseRow(NewestStreamRow, row, "workflow_streams");
      streams.push(head);
      last = { createdAt: created_key, streamId: head.stream_id };
    }
    return { streams, last };
  }

  private async query(text: string, values: unknown[], what: string) {
    try {
      return await this.db.query(text, values);
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
