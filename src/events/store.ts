import type { WorkflowState, WorkflowStatus } from "../state/workflow-state";
import type { StoredEvent, WorkflowEvent } from "./types";
import type { JsonValue } from "./wire";

/** A snapshot is written whenever an append carries the stream across a multiple of this. */
export const SNAPSHOT_INTERVAL = 50;

/** The default stream type for a stream created without one. */
export const DEFAULT_STREAM_TYPE = "workflow";

/**
 * What the caller believes the stream's version is.
 * `any`: no check. `no_stream`: the stream has no events (same as 0).
 * `stream_exists`: at least one event. A number: exactly that version.
 */
export type ExpectedVersion = "any" | "no_stream" | "stream_exists" | number;

export interface NewEvent {
  event: WorkflowEvent;
  /** Supply it to make retries idempotent; generated when absent. */
  event_id?: string | undefined;
  metadata?: JsonValue | undefined;
}

export interface AppendRequest {
  streamId: string;
  expectedVersion: ExpectedVersion;
  events: readonly NewEvent[];
  /** Applied when the append creates the stream (default `workflow`); must match an existing stream's type. */
  streamType?: string;
  /**
   * The state after these events, from a caller that has already checked them
   * against the state rules (the stream actor). Only honoured with an exact expected
   * version whose value plus the event count equals its `version`; otherwise the
   * store rebuilds the state itself before writing.
   */
  stateAfter?: WorkflowState;
}

export interface AppendResult {
  streamId: string;
  streamType: string;
  /** The stream's version after the append (the last event's version). */
  version: number;
  /** One per event, in request order. */
  versions: number[];
  eventIds: string[];
  /** True when every event was already stored by an earlier identical append; nothing was written. */
  idempotent: boolean;
  /** The version of the snapshot written with this append, if one was. */
  snapshotVersion: number | null;
  /** When the events were stored (one time for the whole append); absent on an idempotent repeat. */
  occurredAt?: string;
  /** Each event's place in the all-streams log, in request order; absent on an idempotent repeat. */
  globalPositions?: number[];
}

export interface LoadEventsOptions {
  /** Inclusive. Forward reads default to 1, backward reads to the stream's head. */
  fromVersion?: number;
  limit?: number;
  direction?: "forward" | "backward";
}

export interface StreamHead {
  stream_id: string;
  stream_type: string;
  version: number;
  /** The workflow status after the stream's last event. */
  status: WorkflowStatus;
  created_at: string;
  updated_at: string;
}

/** A snapshot row as stored; `state` is unchecked until the rebuilder validates it. */
export interface StoredSnapshot {
  stream_id: string;
  version: number;
  schema_version: number;
  state: unknown;
  created_at: string;
}

/** A stream as a rebuild starts from it: its head, the snapshot to start from, the first events after it. */
export interface LoadedStream {
  head: StreamHead;
  /** The newest snapshot at or below the version wanted, usable or not; null when there is none. */
  snapshot: StoredSnapshot | null;
  /** The events after the snapshot (after version 0 without one) up to the version wanted, in order; maybe only the first of them. */
  events: StoredEvent[];
}

export interface StoredEventRef {
  event_id: string;
  stream_id: string;
  version: number;
}

export interface ListStreamsQuery {
  streamType?: string;
  status?: WorkflowStatus;
  /** Only streams whose id sorts after this one (keyset paging). */
  afterStreamId?: string;
  limit: number;
}

/**
 * Where a newest-first listing stands: a stream's creation time to the microsecond (RFC 3339
 * in UTC with six fraction digits, as PostgreSQL stores it; the heads show milliseconds)
 * and its id, which breaks ties between streams created at the same instant.
 */
export interface NewestStreamsKey {
  createdAt: string;
  streamId: string;
}

export interface NewestStreamsQuery {
  streamType?: string;
  status?: WorkflowStatus;
  /** Only streams older than this key: (created_at, stream_id) below it (keyset paging). */
  before?: NewestStreamsKey;
  limit: number;
}

export interface NewestStreamsPage {
  /** Newest first: created_at descending, then stream_id descending. */
  streams: StreamHead[];
  /** The key of the last stream, to pass as `before` for the next page; undefined when there is none. */
  last: NewestStreamsKey | undefined;
}

export interface EventStore {
  /** Appends all events in one transaction, or none. */
  append(request: AppendRequest): Promise<AppendResult>;
  loadEvents(streamId: string, options?: LoadEventsOptions): Promise<StoredEvent[]>;
  getStreamHead(streamId: string): Promise<StreamHead | null>;
  /** The newest snapshot, or the newest at or below `atOrBelowVersion`. */
  getLatestSnapshot(streamId: string, atOrBelowVersion?: number): Promise<StoredSnapshot | null>;
  /** The head, newest snapshot and tail of a stream in one read (null: no such stream). */
  loadStream(streamId: string, atVersion?: number): Promise<LoadedStream | null>;
  /** Where these event ids are stored, for those that are. */
  findStoredEvents(eventIds: readonly string[]): Promise<StoredEventRef[]>;
  /** Stream heads in stream id order. */
  listStreams(query: ListStreamsQuery): Promise<StreamHead[]>;
  /** Stream heads newest first (created_at, then stream id, both descending). */
  listNewestStreams(query: NewestStreamsQuery): Promise<NewestStreamsPage>;
}

/** Whether going from version `before` to `after` passes a multiple of SNAPSHOT_INTERVAL. */
export function crossesSnapshotBoundary(before: number, after: number): boolean {
  return Math.floor(after / SNAPSHOT_INTERVAL) > Math.floor(before / SNAPSHOT_INTERVAL);
}
