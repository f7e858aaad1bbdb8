import { DurableObject } from "cloudflare:workers";
import type { Pool } from "@neondatabase/serverless";
import { createPool } from "../db/create-pool";
import { readDatabaseSettings } from "../db/database-settings";
import { withTimeout } from "../db/with-timeout";
import type { Env } from "../env";
import {
  earlierAppend,
  expectedVersionConflict,
  type IdentifiedEvent,
  identifyEvents,
  repeatedAppend,
  streamTypeConflict,
} from "../events/append-rules";
import { type Failure, toFailure, unavailable } from "../events/failure";
import { PgEventStore } from "../events/postgres";
import { StateRebuilder } from "../events/replay";
import type { AppendResult, StoredEventRef } from "../events/store";
import {
  ConcurrencyConflict,
  IdempotencyConflict,
  InvalidAppend,
  StreamNotFound,
  StreamTypeMismatch,
} from "../events/store-errors";
import { StoredEvent } from "../events/types";
import { applyEvent } from "../state/apply-event";
import { InvalidEventSequence } from "../state/invalid-event-sequence";
import { emptyWorkflowState, type WorkflowState } from "../state/workflow-state";
import type {
  ActorResult,
  ActorStats,
  AppendCommand,
  AppendOutcome,
  ReadEventsQuery,
  StreamAccess,
  StreamActorApi,
} from "./actor-protocol";
import {
  PING_FRAME,
  PONG_FRAME,
  WatchClientMessage,
  WatcherAttachment,
  type WatchServerMessage,
} from "./watch-messages";

/** Headers the Worker uses to hand a watch request to the actor. */
export const WATCH_HEADERS = {
  streamId: "x-glyph-stream-id",
  from: "x-glyph-watch-from",
  protocol: "x-glyph-watch-protocol",
  /** JSON array of the stream types the watcher's token allows; absent for no limit. */
  allowedStreamTypes: "x-glyph-allowed-stream-types",
};
/** Events one catch-up step sends before the writer loop serves appends again. */
const CATCH_UP_PAGE = 500;
/** Most events one batch (one transaction) carries; later requests wait for the next batch. */
const MAX_BATCH_EVENTS = 2000;
const DEFAULT_DATABASE_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 10_000;

interface CachedStream {
  version: number;
  state: WorkflowState;
  /** Undefined until the stream has its first event. */
  streamType: string | undefined;
}

interface PendingAppend {
  command: AppendCommand;
  /** The command's events, each with its event_id. */
  events: IdentifiedEvent[];
  callerIds: string[];
  enqueuedAt: number;
  resolve: (outcome: AppendOutcome) => void;
}

interface AcceptedAppend {
  pending: PendingAppend;
  firstVersion: number;
  /** Identical requests (same event ids) in the same batch: a client's retry racing its original. */
  repeats: PendingAppend[];
}

/**
 * The stream actor: one per stream, the single writer of its stream. Appends queue
 * here and one writer loop drains the queue, so every request waiting when a write
 * starts joins that write (group commit). It caches the stream's latest version and
 * state, never the log, and treats the cache as disposable: any doubt drops it, and
 * the next write reloads it from the newest snapshot plus the tail.
 */
export class StreamActor extends DurableObject<Env> implements StreamActorApi {
  private streamId: string | undefined;
  private pool: Pool | undefined;
  private store: PgEventStore | undefined;
  private cache: CachedStream | undefined;
  private loading: Promise<CachedStream> | undefined;
  private readonly queue: PendingAppend[] = [];
  private writing = false;
  private readonly counters: ActorStats = { requests: 0, transactions: 0, loads: 0 };
  /** Watchers still reading history; they join the live fan-out once they reach the head. */
  private readonly catchingUp = new Set<WebSocket>();
  private readonly attachments = new WeakMap<WebSocket, WatcherAttachment>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Keep-alives are answered by the runtime itself, so a ping never wakes a hibernated actor.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  /**
   * A watcher: the Worker has checked the request and forwards the upgrade here. The
   * socket is accepted through the Hibernation API, so an idle watcher costs nothing,
   * and it remembers its cursor in its attachment.
   */
  override async fetch(request: Request): Promise<Response> {
    const streamId = request.headers.get(WATCH_HEADERS.streamId) ?? "";
    const from = Number(request.headers.get(WATCH_HEADERS.from) ?? "0");
    const bound = this.bind(streamId);
    if (bound) return new Response(bound.message, { status: 400 });
    if (
      request.headers.get("upgrade")?.toLowerCase() !== "websocket" ||
      !Number.isSafeInteger(from) ||
      from < 0
    ) {
      return new Response("expected a WebSocket upgrade with a whole-number from", { status: 400 });
    }
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const allowed = parseAllowedTypes(request.headers.get(WATCH_HEADERS.allowedStreamTypes));
    this.setAttachment(server, {
      cursor: from,
      caughtUp: false,
      ...(allowed === undefined ? {} : { allowedStreamTypes: allowed }),
    });
    this.catchingUp.add(server);
    this.startWriter();
    const protocol = request.headers.get(WATCH_HEADERS.protocol);
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: protocol ? { "sec-websocket-protocol": protocol } : {},
    });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    let parsed: unknown;
    try {
      parsed = typeof message === "string" ? JSON.parse(message) : undefined;
    } catch {
      parsed = undefined;
    }
    if (WatchClientMessage.safeParse(parsed).success) {
      ws.send(PONG_FRAME);
      return;
    }
    send(ws, {
      type: "error",
      code: "unsupported_message",
      message: 'This socket only reads the stream; the one message it takes is {"type":"ping"}.',
    });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.catchingUp.delete(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.catchingUp.delete(ws);
  }

  async append(command: AppendCommand): Promise<AppendOutcome> {
    const bound = this.bind(command.streamId);
    if (bound) return bound;
    // The edge has checked each event; what is left to settle is their ids.
    const prepared = identifyEvents(command.events);
    if (prepared instanceof InvalidAppend) return prepared.toFailure();
    return new Promise<AppendOutcome>((resolve) => {
      this.queue.push({
        command,
        events: prepared.events,
        callerIds: prepared.callerIds,
        enqueuedAt: Date.now(),
        resolve,
      });
      this.startWriter();
    });
  }

  async readEvents(streamId: string, query: ReadEventsQuery, access: StreamAccess = {}) {
    const bound = this.bind(streamId);
    if (bound) return bound;
    return this.guard(async (store) => {
      const refused = await this.refuseType(store, access);
      if (refused) return refused;
      return { ok: true as const, events: await store.loadEvents(streamId, query) };
    });
  }

  async head(streamId: string, access: StreamAccess = {}) {
    const bound = this.bind(streamId);
    if (bound) return bound;
    return this.guard(async (store) => {
      const refused = await this.refuseType(store, access);
      if (refused) return refused;
      const stream = await store.getStreamHead(streamId);
      if (stream === null || stream.version === 0) return toFailure(new StreamNotFound(streamId));
      return { ok: true as const, stream };
    });
  }

  async state(
    streamId: string,
    atVersion?: number,
    access: StreamAccess = {},
  ): Promise<ActorResult<{ state: WorkflowState }>> {
    const bound = this.bind(streamId);
    if (bound) return bound;
    return this.guard(async (store) => {
      const refused = await this.refuseType(store, access);
      if (refused) return refused;
      const cached = await this.loaded(store);
      if (cached.version === 0) return toFailure(new StreamNotFound(streamId));
      if (atVersion === undefined || atVersion === cached.version)
        return { ok: true as const, state: cached.state };
      const rebuilt = await new StateRebuilder(store).rebuildState(streamId, atVersion);
      return { ok: true as const, state: rebuilt.state };
    });
  }

  /** A failure when the caller's token does not cover this stream's type (known once it has events). */
  private async refuseType(store: PgEventStore, access: StreamAccess): Promise<Failure | undefined> {
    if (access.allowedStreamTypes === undefined) return undefined;
    const cached = await this.loaded(store);
    return forbiddenType(access.allowedStreamTypes, cached.streamType);
  }

  async stats(): Promise<ActorStats> {
    return { ...this.counters };
  }

  /** The actor serves exactly one stream: the one named when it was first called. */
  private bind(streamId: string): Failure | undefined {
    if (this.streamId === undefined) this.streamId = streamId;
    if (this.streamId === streamId) return undefined;
    return {
      ok: false,
      code: "invalid_append",
      message: `This actor serves stream ${this.streamId}, not ${streamId}; address the actor by the stream's id.`,
    };
  }

  private startWriter(): void {
    if (!this.writing) void this.runWriter();
  }

  /**
   * The one loop that touches the stream: batches of appends, and between them one
   * page of catch-up per watcher still reading history. Because nothing is written
   * while a watcher catches up, and a watcher joins the live fan-out exactly at the
   * version it has read to, no watcher misses or repeats an event.
   */
  private async runWriter(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0 || this.catchingUp.size > 0) {
        if (this.queue.length > 0) await this.writeBatch(this.takeBatch());
        for (const ws of [...this.catchingUp]) await this.catchUp(ws);
      }
    } finally {
      this.writing = false;
    }
  }

  /** Sends the watcher its next page of history, or tells it that it is live. */
  private async catchUp(ws: WebSocket): Promise<void> {
    const attachment = this.attachmentOf(ws);
    if (attachment === undefined) {
      this.catchingUp.delete(ws);
      return;
    }
    let cursor = attachment.cursor;
    let store: PgEventStore | undefined;
    try {
      store = this.openStore();
      const cached = await this.loaded(store);
      const refused = forbiddenType(attachment.allowedStreamTypes, cached.streamType);
      if (refused) {
        this.catchingUp.delete(ws);
        refuseWatcher(ws, refused.message);
        return;
      }
      if (cursor < cached.version) {
        const page = await this.timed(
          store.loadEvents(this.requireStreamId(), {
            fromVersion: cursor + 1,
            limit: Math.min(CATCH_UP_PAGE, cached.version - cursor),
          }),
        );
        for (const event of page) {
          if (event.version !== cursor + 1) break;
          if (!trySend(ws, JSON.stringify({ type: "event", event } satisfies WatchServerMessage))) {
            // The watcher left mid-page: nothing is wrong with the database.
            this.catchingUp.delete(ws);
            return;
          }
          cursor = event.version;
        }
      }
      const live = cursor >= cached.version;
      this.setAttachment(ws, { ...attachment, cursor, caughtUp: attachment.caughtUp || live });
      if (live) {
        this.catchingUp.delete(ws);
        if (!attachment.caughtUp) send(ws, { type: "caught_up", version: cached.version });
      }
    } catch (error) {
      this.catchingUp.delete(ws);
      const failure = toFailure(error);
      if (failure.code === "unavailable") this.forget(store);
      closeWatcher(ws, failure.message, cursor);
    }
  }

  /**
   * A watcher's attachment: from memory, or (after hibernation threw memory away)
   * validated from the socket once. Publishing to many watchers reads it for each.
   */
  private attachmentOf(ws: WebSocket): WatcherAttachment | undefined {
    const known = this.attachments.get(ws);
    if (known) return known;
    const parsed = WatcherAttachment.safeParse(ws.deserializeAttachment());
    if (!parsed.success) return undefined;
    this.attachments.set(ws, parsed.data);
    return parsed.data;
  }

  /** Remembers a watcher's attachment, in memory and on the socket (which survives hibernation). */
  private setAttachment(ws: WebSocket, attachment: WatcherAttachment): void {
    this.attachments.set(ws, attachment);
    ws.serializeAttachment(attachment);
  }

  /** Pushes a committed batch to every live watcher that is exactly where the batch begins. */
  private publish(events: StoredEvent[]): void {
    const first = events[0]?.version;
    const last = events[events.length - 1]?.version;
    if (first === undefined || last === undefined) return;
    const frames = events.map((event) =>
      JSON.stringify({ type: "event", event } satisfies WatchServerMessage),
    );
    for (const ws of this.ctx.getWebSockets()) {
      if (this.catchingUp.has(ws)) continue;
      const attachment = this.attachmentOf(ws);
      if (attachment === undefined || attachment.cursor >= last) continue;
      const refused = forbiddenType(attachment.allowedStreamTypes, events[0]?.stream_type);
      if (refused) {
        refuseWatcher(ws, refused.message);
        continue;
      }
      if (attachment.cursor < first - 1) {
        // It missed something (another writer, or a reload): let it read from the log.
        this.catchingUp.add(ws);
        continue;
      }
      try {
        for (const [index, event] of events.entries()) {
          if (event.version > attachment.cursor) ws.send(frames[index] ?? "");
        }
        this.setAttachment(ws, { ...attachment, cursor: last });
      } catch {
        // The socket went away; webSocketClose cleans up.
      }
    }
  }

  private takeBatch(): PendingAppend[] {
    let events = 0;
    let count = 0;
    for (const pending of this.queue) {
      if (count > 0 && events + pending.events.length > MAX_BATCH_EVENTS) break;
      events += pending.events.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async writeBatch(batch: PendingAppend[], attempt = 1): Promise<void> {
    const takenAt = Date.now();
    if (attempt === 1) this.counters.requests += batch.length;
    let store: PgEventStore | undefined;
    let cached: CachedStream;
    let stored: Map<string, StoredEventRef>;
    try {
      store = this.openStore();
      cached = await this.loaded(store);
      const ids = batch.flatMap((pending) => pending.callerIds);
      stored = new Map(
        ids.length === 0
          ? []
          : (await this.timed(store.findStoredEvents(ids))).map((ref) => [ref.event_id, ref] as const),
      );
    } catch (error) {
      this.forget(store);
      for (const pending of batch) pending.resolve(toFailure(error));
      return;
    }

    const accepted: AcceptedAppend[] = [];
    let draft = cached.state;
    let streamType = cached.streamType;
    for (const pending of batch) {
      const verdict = this.check(pending, draft, streamType, stored, accepted);
      if ("resolved" in verdict) continue;
      accepted.push({ pending, firstVersion: draft.version + 1, repeats: [] });
      draft = verdict.draft;
      streamType ??= pending.command.streamType ?? "workflow";
    }
    if (accepted.length === 0) return;

    const databaseStart = Date.now();
    let result: AppendResult;
    try {
      result = await this.timed(
        store.append({
          streamId: this.requireStreamId(),
          expectedVersion: cached.version,
          events: accepted.flatMap((item) => item.pending.events),
          streamType: cached.streamType === undefined ? streamType : undefined,
          stateAfter: draft,
          eventIdsChecked: true,
        }),
      );
    } catch (error) {
      this.forget(store);
      const anotherWriter =
        error instanceof ConcurrencyConflict ||
        error instanceof IdempotencyConflict ||
        error instanceof StreamTypeMismatch;
      if (anotherWriter && attempt === 1) {
        // Someone else wrote to this stream (a second actor during a deploy): reload and decide again.
        await this.writeBatch(
          accepted.flatMap((item) => [item.pending, ...item.repeats]),
          2,
        );
        return;
      }
      const failure = anotherWriter ? unavailable(error) : toFailure(error);
      for (const item of accepted) {
        item.pending.resolve(failure);
        for (const repeat of item.repeats) repeat.resolve(failure);
      }
      return;
    }
    this.counters.transactions++;
    this.cache = { version: result.version, state: draft, streamType: result.streamType };
    const committed = storedEventsOf(result, accepted);
    if (committed) this.publish(committed);
    else for (const ws of this.ctx.getWebSockets()) this.catchingUp.add(ws);
    const finishedAt = Date.now();
    for (const item of accepted) {
      const count = item.pending.events.length;
      const appended: AppendResult = {
        streamId: result.streamId,
        streamType: result.streamType,
        version: item.firstVersion + count - 1,
        versions: Array.from({ length: count }, (_, index) => item.firstVersion + index),
        eventIds: item.pending.events.map((event) => event.event_id),
        idempotent: false,
        snapshotVersion: result.snapshotVersion,
      };
      for (const [index, pending] of [item.pending, ...item.repeats].entries()) {
        pending.resolve({
          ok: true,
          result: index === 0 ? appended : { ...appended, idempotent: true, snapshotVersion: null },
          timing: {
            queueMs: takenAt - pending.enqueuedAt,
            databaseMs: finishedAt - databaseStart,
            totalMs: finishedAt - pending.enqueuedAt,
          },
        });
      }
    }
  }

  /**
   * Decides one request against the draft: answers it now (idempotent repeat or a
   * refusal, leaving the draft as it was) or returns the draft with its events applied.
   */
  private check(
    pending: PendingAppend,
    draft: WorkflowState,
    streamType: string | undefined,
    stored: Map<string, StoredEventRef>,
    accepted: AcceptedAppend[],
  ): { resolved: true } | { draft: WorkflowState } {
    const answer = (outcome: AppendOutcome) => {
      pending.resolve(outcome);
      return { resolved: true } as const;
    };
    const { command } = pending;
    const streamId = this.requireStreamId();
    const refused = forbiddenType(command.allowedStreamTypes, streamType ?? command.streamType ?? "workflow");
    if (refused) return answer(refused);

    if (pending.callerIds.length > 0) {
      const repeat = this.earlierAppend(pending, stored, accepted, streamType);
      if (repeat === "repeat") return { resolved: true };
      if (repeat !== undefined) return answer(repeat);
    }
    const conflict =
      expectedVersionConflict(streamId, command.expectedVersion, draft.version) ??
      streamTypeConflict(streamId, command.streamType, streamType);
    if (conflict) return answer(conflict.toFailure());
    let next = draft;
    for (const [index, item] of pending.events.entries()) {
      try {
        next = applyEvent(next, item.event);
      } catch (error) {
        if (!(error instanceof InvalidEventSequence)) throw error;
        const failure = toFailure(error);
        return answer({ ...failure, details: { ...failure.details, event_index: index } });
      }
    }
    return { draft: next };
  }

  /** The answer for a request whose ids are already stored (or accepted earlier in this batch), if they are. */
  private earlierAppend(
    pending: PendingAppend,
    stored: Map<string, StoredEventRef>,
    accepted: AcceptedAppend[],
    streamType: string | undefined,
  ): AppendOutcome | "repeat" | undefined {
    const streamId = this.requireStreamId();
    const ids = pending.events.map((event) => event.event_id);
    const earlier = earlierAppend(streamId, ids, stored);
    if (Array.isArray(earlier)) {
      return {
        ok: true,
        result: repeatedAppend(streamId, streamType ?? "workflow", ids, earlier),
        timing: { queueMs: 0, databaseMs: 0, totalMs: Date.now() - pending.enqueuedAt },
      };
    }
    const inBatch = accepted.filter((item) =>
      item.pending.callerIds.some((id) => pending.callerIds.includes(id)),
    );
    const original = inBatch[0];
    if (earlier === undefined && inBatch.length === 1 && original && sameIds(original.pending, pending)) {
      original.repeats.push(pending);
      return "repeat";
    }
    if (earlier !== undefined || inBatch.length > 0) {
      const clashing = ids.filter(
        (id) => stored.has(id) || inBatch.some((item) => item.pending.callerIds.includes(id)),
      );
      return new IdempotencyConflict(streamId, clashing).toFailure();
    }
    return undefined;
  }

  /** The cached stream, loading it (once, however many callers wait) when absent. */
  private async loaded(store: PgEventStore): Promise<CachedStream> {
    if (this.cache) return this.cache;
    this.loading ??= this.load(store).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(store: PgEventStore): Promise<CachedStream> {
    const streamId = this.requireStreamId();
    const head = await this.timed(store.getStreamHead(streamId));
    this.counters.loads++;
    if (head === null || head.version === 0) {
      this.cache = { version: 0, state: emptyWorkflowState(), streamType: undefined };
      return this.cache;
    }
    const rebuilt = await this.timed(new StateRebuilder(store).rebuildFromHead(head));
    this.cache = { version: rebuilt.state.version, state: rebuilt.state, streamType: head.stream_type };
    return this.cache;
  }

  /** Runs a read with the store, answering store errors and timeouts as failures. */
  private async guard<T extends { ok: true }>(
    work: (store: PgEventStore) => Promise<T | Failure>,
  ): Promise<T | Failure> {
    let store: PgEventStore | undefined;
    try {
      store = this.openStore();
      return await this.timed(work(store));
    } catch (error) {
      const failure = toFailure(error);
      if (failure.code === "unavailable") this.forget(store);
      return failure;
    }
  }

  private openStore(): PgEventStore {
    if (this.store) return this.store;
    const idle = Number(this.env.DATABASE_IDLE_TIMEOUT_MS ?? DEFAULT_IDLE_TIMEOUT_MS);
    // One connection: the actor is the stream's only writer, and reads can wait their turn.
    this.pool = createPool(readDatabaseSettings(this.env), {
      max: 1,
      idleTimeoutMillis: Number.isFinite(idle) && idle > 0 ? idle : DEFAULT_IDLE_TIMEOUT_MS,
    });
    this.store = new PgEventStore(this.pool);
    return this.store;
  }

  /**
   * Drops everything that might be wrong after a failure with `failed`: the cached
   * state (the outcome of a write in flight is unknown) and the pool (its connections
   * may be dead). A late failure from a store already replaced changes nothing.
   */
  private forget(failed: PgEventStore | undefined): void {
    if (failed !== undefined && failed !== this.store) return;
    this.cache = undefined;
    const pool = this.pool;
    this.pool = undefined;
    this.store = undefined;
    if (pool) this.ctx.waitUntil(pool.end().catch(() => undefined));
  }

  private timed<T>(work: Promise<T>): Promise<T> {
    const limit = Number(this.env.DATABASE_TIMEOUT_MS ?? DEFAULT_DATABASE_TIMEOUT_MS);
    return withTimeout(work, Number.isFinite(limit) && limit > 0 ? limit : DEFAULT_DATABASE_TIMEOUT_MS);
  }

  private requireStreamId(): string {
    if (this.streamId === undefined) throw new Error("the actor was used before it knew its stream");
    return this.streamId;
  }
}

/** Whether two requests carry the same caller-chosen event ids in the same order. */
function sameIds(a: PendingAppend, b: PendingAppend): boolean {
  return (
    a.callerIds.length === a.events.length &&
    b.callerIds.length === b.events.length &&
    a.callerIds.length === b.callerIds.length &&
    a.callerIds.every((id, index) => b.callerIds[index] === id)
  );
}

/** The committed events as reads return them, for the watchers; undefined if one cannot be built. */
function storedEventsOf(result: AppendResult, accepted: AcceptedAppend[]): StoredEvent[] | undefined {
  const events: StoredEvent[] = [];
  let index = 0;
  for (const item of accepted) {
    for (const [offset, pending] of item.pending.events.entries()) {
      const parsed = StoredEvent.safeParse({
        event_id: pending.event_id,
        stream_id: result.streamId,
        stream_type: result.streamType,
        version: item.firstVersion + offset,
        event: pending.event,
        metadata: pending.metadata ?? {},
        occurred_at: result.occurredAt,
        global_position: result.globalPositions?.[index],
      });
      index++;
      if (!parsed.success) return undefined;
      events.push(parsed.data);
    }
  }
  return events;
}

/** Sends a frame; false when the socket has gone away (webSocketClose cleans up). */
function trySend(ws: WebSocket, frame: string): boolean {
  try {
    ws.send(frame);
    return true;
  } catch {
    return false;
  }
}

function send(ws: WebSocket, message: WatchServerMessage): void {
  trySend(ws, JSON.stringify(message));
}

function parseAllowedTypes(header: string | null): string[] | undefined {
  if (header === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(header);
    return Array.isArray(parsed) ? parsed.map(String) : [];
  } catch {
    return [];
  }
}

/** Ends a watcher whose token does not cover this stream. */
function refuseWatcher(ws: WebSocket, message: string): void {
  send(ws, { type: "error", code: "forbidden", message });
  try {
    ws.close(1008, "forbidden: the token does not cover this stream's type");
  } catch {
    // Already closed.
  }
}

/** Ends a watcher that cannot be served now, telling it where to resume. */
function closeWatcher(ws: WebSocket, message: string, cursor: number): void {
  send(ws, { type: "error", code: "unavailable", message });
  try {
    ws.close(1011, `database unavailable; reconnect with from=${cursor}`);
  } catch {
    // Already closed.
  }
}

/** Refuses a stream whose type is outside the caller's allowed types; a stream without events has no type yet. */
function forbiddenType(
  allowed: readonly string[] | undefined,
  streamType: string | undefined,
): Failure | undefined {
  if (allowed === undefined || streamType === undefined || allowed.includes(streamType)) return undefined;
  return {
    ok: false,
    code: "forbidden",
    message: `This token may only access streams of type ${allowed.join(", ")}; this stream is of type ${streamType}.`,
  };
}
