import { randomUUID } from "node:crypto";
import type { Pool } from "@neondatabase/serverless";
import type { WorkflowEvent } from "../../src/events/types";
import { Timestamp } from "../../src/events/wire";
import { applyEvent } from "../../src/state/apply-event";
import { emptyWorkflowState, STATE_SCHEMA_VERSION, type WorkflowState } from "../../src/state/workflow-state";
import { benchAuthorization } from "./auth";
import { type HttpResponse, httpRequest } from "./http-client";

// The events the benchmark writes: a workflow_started, then context_updated events
// over a small fixed set of keys, so that the state (and its snapshot) stays small
// however long the stream gets, exactly as DESIGN.md intends.

const CONTEXT_KEYS = 16;
/** The stream type of every stream the benchmark creates. */
export const BENCH_STREAM_TYPE = "bench";

/** Every stream this run created, so that they can be deleted at the end. */
export const createdStreams = new Set<string>();
/** A fixed timestamp in canonical form (what the Worker would store for it). */
const FIXED_TIME = Timestamp.parse("2026-01-01T00:00:00Z");

export type WireEvent = Record<string, string | number>;

export function startedEvent(): WireEvent {
  return { type: "workflow_started", workflow_id: randomUUID(), config_version: "bench" };
}

export function contextEvent(key: string, value: number): WireEvent {
  return { type: "context_updated", key, value };
}

export function appendBody(events: readonly WireEvent[], streamType?: string): string {
  return JSON.stringify({
    events: events.map((event) => ({ event })),
    ...(streamType === undefined ? {} : { stream_type: streamType }),
  });
}

export function appendUrl(base: URL, streamId: string): URL {
  return new URL(`/streams/${streamId}/events`, base);
}

const JSON_HEADERS = { "content-type": "application/json", ...benchAuthorization };

export function postAppend(base: URL, streamId: string, body: string): Promise<HttpResponse> {
  return httpRequest("POST", appendUrl(base, streamId), JSON_HEADERS, body);
}

export function getState(base: URL, streamId: string): Promise<HttpResponse> {
  return httpRequest("GET", new URL(`/streams/${streamId}/state`, base), { ...benchAuthorization });
}

/** Creates a stream through the Worker with its workflow_started event. */
export async function createStream(base: URL, streamId: string = randomUUID()): Promise<string> {
  createdStreams.add(streamId);
  const response = await postAppend(base, streamId, appendBody([startedEvent()], BENCH_STREAM_TYPE));
  if (response.status !== 201) {
    throw new Error(
      `creating stream ${streamId} answered ${response.status}: ${response.body.slice(0, 300)}`,
    );
  }
  return streamId;
}

// ------------------------------------------------------------------ bulk loading

/** Event `version` (1-based) of a bulk-loaded stream, exactly as the SQL below writes it. */
function bulkEvent(version: number, workflowId: string): WorkflowEvent {
  if (version === 1) {
    return {
      type: "workflow_started",
      workflow_id: workflowId,
      config_version: "bench",
      started_at: FIXED_TIME,
    };
  }
  return {
    type: "context_updated",
    key: `k${version % CONTEXT_KEYS}`,
    value: version,
    updated_at: FIXED_TIME,
  };
}

export interface BulkStream {
  streamId: string;
  events: number;
  /** The version of its snapshot, or null when it has none. */
  snapshotVersion: number | null;
  state: WorkflowState;
}

/**
 * Writes a stream of `events` events straight into the tables (one transaction,
 * generate_series), and, when asked, the snapshot the store would have written: the
 * state at the newest multiple of 50, computed with the product's reducer.
 */
export async function loadStream(pool: Pool, events: number, withSnapshot: boolean): Promise<BulkStream> {
  const streamId = randomUUID();
  createdStreams.add(streamId);
  const workflowId = randomUUID();
  let state = emptyWorkflowState();
  let snapshot: WorkflowState | null = null;
  const snapshotVersion = Math.floor(events / 50) * 50;
  for (let version = 1; version <= events; version++) {
    state = applyEvent(state, bulkEvent(version, workflowId));
    if (version === snapshotVersion) snapshot = state;
  }
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      "INSERT INTO workflow_streams (stream_id, stream_type, version, status) VALUES ($1, $2, $3, $4)",
      [streamId, BENCH_STREAM_TYPE, events, state.status],
    );
    await client.query(
      `INSERT INTO workflow_events (event_id, stream_id, stream_type, version, event_type, event, metadata)
       SELECT gen_random_uuid(), $1::uuid, $5::text, i,
              CASE WHEN i = 1 THEN 'workflow_started' ELSE 'context_updated' END,
              CASE WHEN i = 1
                THEN jsonb_build_object('type', 'workflow_started', 'workflow_id', $3::text,
                                        'config_version', 'bench', 'started_at', $4::text)
                ELSE jsonb_build_object('type', 'context_updated', 'key', 'k' || (i % ${CONTEXT_KEYS}),
                                        'value', i, 'updated_at', $4::text)
              END,
              '{}'::jsonb
         FROM generate_series(1, $2::bigint) AS i`,
      [streamId, events, workflowId, FIXED_TIME, BENCH_STREAM_TYPE],
    );
    if (withSnapshot && snapshot !== null) {
      await client.query(
        "INSERT INTO workflow_snapshots (stream_id, version, schema_version, state) VALUES ($1, $2, $3, $4::jsonb)",
        [streamId, snapshotVersion, STATE_SCHEMA_VERSION, JSON.stringify(snapshot)],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  return {
    streamId,
    events,
    snapshotVersion: withSnapshot && snapshot !== null ? snapshotVersion : null,
    state,
  };
}

// ------------------------------------------------------------------ group commit

export interface CommitCounts {
  events: number;
  /** Distinct inserting transactions (xmin) of those events. */
  transactions: number;
}

/**
 * How many transactions wrote the streams' events after the given versions (one per
 * stream; 1 when absent: everything after workflow_started). Every row a transaction
 * inserts carries that transaction's id in xmin. (All events of one append also share
 * occurred_at = now(); xmin is exact where a clock tick could not be.)
 */
export async function commitCounts(
  pool: Pool,
  streamIds: readonly string[],
  afterVersions?: readonly number[],
): Promise<CommitCounts> {
  const result = await pool.query(
    `SELECT count(*)::int AS events, count(DISTINCT e.xmin::text)::int AS transactions
       FROM workflow_events e
       JOIN unnest($1::uuid[], $2::bigint[]) AS s(stream_id, after) ON e.stream_id = s.stream_id
      WHERE e.version > s.after`,
    [streamIds, streamIds.map((_, index) => afterVersions?.[index] ?? 1)],
  );
  const row = result.rows[0] as { events?: unknown; transactions?: unknown } | undefined;
  return { events: Number(row?.events ?? 0), transactions: Number(row?.transactions ?? 0) };
}

/** The streams' current versions, in the order given. */
export async function streamVersions(pool: Pool, streamIds: readonly string[]): Promise<number[]> {
  const result = await pool.query(
    "SELECT stream_id::text AS id, version FROM workflow_streams WHERE stream_id = ANY($1::uuid[])",
    [streamIds],
  );
  const versions = new Map(
    (result.rows as Array<{ id: string; version: unknown }>).map(
      (row) => [row.id, Number(row.version)] as const,
    ),
  );
  return streamIds.map((id) => versions.get(id) ?? 0);
}

/** Deletes every stream this run created (snapshots, events, heads), in chunks. */
export async function deleteCreatedStreams(pool: Pool): Promise<number> {
  const ids = [...createdStreams];
  for (let start = 0; start < ids.length; start += 200) {
    const chunk = ids.slice(start, start + 200);
    await pool.query("DELETE FROM webhook_deliveries WHERE stream_id = ANY($1::uuid[])", [chunk]);
    await pool.query("DELETE FROM workflow_snapshots WHERE stream_id = ANY($1::uuid[])", [chunk]);
    await pool.query("DELETE FROM workflow_events WHERE stream_id = ANY($1::uuid[])", [chunk]);
    await pool.query("DELETE FROM workflow_streams WHERE stream_id = ANY($1::uuid[])", [chunk]);
  }
  createdStreams.clear();
  return ids.length;
}
