import { DurableObject } from "cloudflare:workers";
import { workerConfig } from "../config/worker-config";
import { openHttpClient } from "../db/http-client";
import { countStatements } from "../db/sql-client";
import { withTimeout } from "../db/with-timeout";
import { exactExpectedVersion, identifyEvents, repeatedAppend } from "../events/append-rules";
import { type Failure, logServiceFault, toFailure, unavailable } from "../events/failure";
import { PgEventStore } from "../events/postgres";
import { StateRebuilder } from "../events/replay";
import { type AppendResult, DEFAULT_STREAM_TYPE, type StoredEventRef } from "../events/store";
import { ConcurrencyConflict, InvalidAppend, StreamNotFound } from "../events/store-errors";
import { deliveryKey, type RecordedDelivery, type WebhookDelivery } from "../events/webhook-deliveries";
import { feedNotifier } from "../feed/feed-actor";
import type { FeedNotifier } from "../feed/feed-notifier";
import type { StateCondition } from "../state/state-condition";
import { emptyWorkflowState, type WorkflowState } from "../state/workflow-state";
import type {
  ActorResult,
  ActorStats,
  AppendAnswer,
  AppendCall,
  AppendCommand,
  AppendOutcome,
  ReadEventsQuery,
  StreamAccess,
  StreamActorApi,
} from "./actor-protocol";
import { packAppendOutcome } from "./actor-protocol";
import { type BatchDecision, type BatchedAppend, decideBatch, type StreamDraft } from "./group-commit";
import { RecentEventIds } from "./recent-event-ids";
import { forbiddenType } from "./stream-access";
import { TURN_GRACE_MS, Turns } from "./turns";
import { PING_FRAME, PONG_FRAME } from "./watch-messages";
import { parseStreamTypesHeader } from "./watch-socket";
import { Watchers } from "./watchers";

/** Headers the Worker uses to hand a watch request to the actor. */
export const WATCH_HEADERS = {
  streamId: "x-glyph-stream-id",
  from: "x-glyph-watch-from",
  protocol: "x-glyph-watch-protocol",
  /** JSON array of the stream types the watcher's token allows; absent for no limit. */
  allowedStreamTypes: "x-glyph-allowed-stream-types",
  /** The watcher's token, whose watchers are capped across streams. */
  tokenId: "x-glyph-token-id",
};
/** Most events one batch (one transaction) carries; later requests wait for the next batch. */
const MAX_BATCH_EVENTS = 2000;
/** A stream with no events, as the actor caches it. */
const EMPTY_STREAM: StreamDraft = { state: emptyWorkflowState(), streamType: undefined };

interface PendingAppend extends BatchedAppend {
  /** The ids the caller chose: the only ones that can already be stored. */
  callerIds: string[];
  enqueuedAt: number;
  resolve: (outcome: AppendOutcome) => void;
  /** Held for its turn and released: decided before. */
  released?: boolean;
}

/**
 * The stream actor: one per stream, the single writer of its stream. Appends queue
 * here and one writer loop drains the queue, so every request waiting when a write
 * starts joins that write (group commit, decided by decideBatch). It caches the
 * stream's latest state, never the log, and treats the cache as disposable: any doubt
 * drops it, and the next write reloads it from the newest snapshot plus the tail.
 */
export class StreamActor extends DurableObject<Env> implements StreamActorApi {
  private streamId: string | undefined;
  private store: PgEventStore | undefined;
  private cache: StreamDraft | undefined;
  private loading: Promise<StreamDraft> | undefined;
  private readonly queue: PendingAppend[] = [];
  private writing = false;
  private readonly counters: ActorStats = { requests: 0, transactions: 0, loads: 0, statements: 0 };
  private readonly recentIds = new RecentEventIds();
  private readonly turns = new Turns<PendingAppend>();
  /** While appends are held for their turn, releases them when the turns before theirs lapse. */
  private turnTimer: ReturnType<typeof setInterval> | undefined;
  /** Made at the first commit: the constructor reads no configuration (an invalid one fails each call, not the object). */
  private feed: FeedNotifier | undefined;
  private readonly watchers: Watchers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Keep-alives are answered by the runtime itself, so a ping never wakes a hibernated actor.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    this.watchers = new Watchers(ctx, env);
  }

  /** A watcher: the Worker has checked the request and forwards the upgrade here. */
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
    const admitted = await this.watchers.admit(server, streamId, {
      cursor: from,
      allowedStreamTypes: parseStreamTypesHeader(request.headers.get(WATCH_HEADERS.allowedStreamTypes)),
      tokenId: request.headers.get(WATCH_HEADERS.tokenId) ?? undefined,
    });
    if (admitted) this.startWriter();
    const protocol = request.headers.get(WATCH_HEADERS.protocol);
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: protocol ? { "sec-websocket-protocol": protocol } : {},
    });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.watchers.answer(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.watchers.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.watchers.failed(ws);
  }

  async append(call: AppendCall): Promise<AppendAnswer> {
    const { condition, ...rest } = call;
    const command: AppendCommand =
      condition === undefined ? rest : { ...rest, condition: JSON.parse(condition) as StateCondition };
    return packAppendOutcome(await this.enqueue(command));
  }

  private async enqueue(command: AppendCommand): Promise<AppendOutcome> {
    const bound = this.bind(command.streamId);
    if (bound) return bound;
    // The edge has checked each event; what is left to settle is their ids.
    const identified = identifyEvents(command.events);
    if (identified instanceof InvalidAppend) return identified.toFailure();
    // Only here, where the writer sent it: a held append decided again carries the turn
    // the actor gave it, which its writer has not sent back (turns.ts).
    this.turns.present(command.turn);
    return new Promise<AppendOutcome>((resolve) => {
      this.queue.push({ command, ...identified, enqueuedAt: Date.now(), resolve });
      this.startWriter();
    });
  }

  async readEvents(streamId: string, query: ReadEventsQuery, access: StreamAccess = {}) {
    return this.readStream("read_events", streamId, access, async (store) => {
      const page = await store.loadEventsPage(streamId, query);
      // More may follow a full page, and a page cut short by its size (page-bytes.ts).
      return { ok: true as const, events: page.events, more: page.cut || page.events.length === query.limit };
    });
  }

  async head(streamId: string, access: StreamAccess = {}) {
    return this.readStream("read_head", streamId, access, async (store) => {
      const stream = await store.getStreamHead(streamId);
      if (stream === null || stream.version === 0) return new StreamNotFound(streamId).toFailure();
      return { ok: true as const, stream };
    });
  }

  async state(
    streamId: string,
    atVersion?: number,
    access: StreamAccess = {},
  ): Promise<ActorResult<{ state: WorkflowState }>> {
    return this.readStream(
      "read_state",
      streamId,
      access,
      async (store) => {
        const { state } = await this.loaded(store);
        if (state.version === 0) return new StreamNotFound(streamId).toFailure();
        if (atVersion === undefined || atVersion === state.version) return { ok: true as const, state };
        // The stream has events, so it has a head: loadStream finds it.
        const loaded = await store.loadStream(streamId, atVersion);
        if (loaded === null) return new StreamNotFound(streamId).toFailure();
        const rebuilt = await new StateRebuilder(store).rebuildLoaded(loaded, atVersion);
        return { ok: true as const, state: rebuilt.state };
      },
      // A past version is rebuilt from a snapshot and the events after it: several statements.
      atVersion === undefined ? "load" : "whole",
    );
  }

  async stats(): Promise<ActorStats> {
    return { ...this.counters };
  }

  /** The watchers open now, by lease: a token's WatcherQuota asks, to drop leases lost with a socket. */
  async watcherLeases(): Promise<string[]> {
    return this.watchers.leases();
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
      while (this.queue.length > 0 || this.watchers.behind) {
        if (this.queue.length > 0) await this.writeBatch(this.takeBatch());
        await this.watchers.catchUp((cursor, limit, access) => this.readHistory(cursor, limit, access));
      }
    } finally {
      this.writing = false;
    }
  }

  /** A watcher's next page: the stream's version and up to `limit` events after `cursor`. */
  private readHistory(cursor: number, limit: number, access: StreamAccess) {
    const streamId = this.requireStreamId();
    return this.readStream("watch", streamId, access, async (store) => {
      const { version } = (await this.loaded(store)).state;
      const events =
        cursor < version
          ? await store.loadEvents(streamId, {
              fromVersion: cursor + 1,
              limit: Math.min(limit, version - cursor),
            })
          : [];
      return { ok: true as const, version, events };
    });
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

  /**
   * One group commit: decide the batch against the cached stream and the event ids the
   * actor remembers, write the accepted events with one statement, then answer every
   * request and tell the watchers. The statement also probes the batch's caller-chosen
   * ids that are not remembered: if one of them is stored, it writes nothing and says
   * where, and the batch is decided again knowing it (a retry becomes a repeat, a reused
   * id a conflict) and written without those (the rare path). A batch that writes nothing
   * but holds such ids (a refusal that may be a retry) looks them up instead.
   */
  private async writeBatch(batch: PendingAppend[], attempt = 1): Promise<void> {
    const takenAt = Date.now();
    // A held append (turns.ts) is decided again when released, but it is one request.
    if (attempt === 1) this.counters.requests += batch.filter((pending) => !pending.released).length;
    const streamId = this.requireStreamId();
    const callerIds = new Set(batch.flatMap((pending) => pending.callerIds));
    const known = this.recentIds.lookup(callerIds);
    let databaseMs = 0;
    // One statement is bounded by its own fetch's signal (http-client.ts); a load, which
    // can be several, by DATABASE_TIMEOUT_MS as a whole. A warm append arms no timer here.
    const timed = async <T>(work: Promise<T>): Promise<T> => {
      const start = Date.now();
      try {
        return await work;
      } finally {
        databaseMs += Date.now() - start;
      }
    };
    const learn = (stored: readonly StoredEventRef[]) => {
      const news = stored.filter((ref) => callerIds.has(ref.event_id) && !known.has(ref.event_id));
      // Each round must settle an id, or the loop would not end.
      if (news.length === 0)
        throw new Error("the database reported stored event ids the batch did not ask for");
      for (const ref of news) known.set(ref.event_id, ref);
      this.recentIds.remember(news);
    };
    // Webhook deliveries (issue 10, row 1): probed and recorded by the same statement, as caller ids are.
    const deliveries = batchDeliveries(batch);
    try {
      const store = this.openStore();
      const load = () => timed(this.withDatabaseLimit(this.loaded(store)));
      // A cold actor whose batch starts a workflow (valid only on an empty stream) writes
      // it as to an empty stream without loading: the statement creates the head only if
      // there is none, so a wrong guess writes nothing and the stream is loaded after all.
      let guessedEmpty = this.cache === undefined && startsWorkflow(batch);
      let before = guessedEmpty ? EMPTY_STREAM : (this.cache ?? (await load()));
      for (;;) {
        const decision = decideBatch(streamId, before, batch, known, deliveries.known, (append) =>
          this.turns.mayWin(append.command.turn),
        );
        const probeIds = [...callerIds].filter((id) => !known.has(id));
        if (decision.events.length === 0 && guessedEmpty) {
          guessedEmpty = false;
          before = await load();
          continue;
        }
        if (decision.events.length === 0) {
          const stored = probeIds.length === 0 ? [] : await timed(store.findStoredEvents(probeIds));
          if (stored.length > 0) {
            learn(stored);
            continue;
          }
          const unknown = deliveries.unknown();
          if (unknown.length > 0 && deliveries.learn(await timed(store.findDeliveries(unknown)))) continue;
          this.answer(decision, undefined, { takenAt, databaseMs });
          return;
        }
        const outcome = await timed(
          store.write({
            streamId,
            base: before.state.version,
            events: decision.events,
            // Only a batch that creates the stream names its type; an existing stream keeps its own.
            streamType: before.streamType === undefined ? decision.after.streamType : undefined,
            stateAfter: decision.after.state,
            probeIds,
            deliveries: { probe: deliveries.unknown(), record: decision.deliveries },
          }),
        );
        if (outcome.kind === "ids_stored") {
          learn(outcome.stored);
          continue;
        }
        if (outcome.kind === "delivered") {
          if (!deliveries.learn(outcome.recorded))
            throw new Error("the database reported webhook deliveries the batch did not ask for");
          continue;
        }
        if (outcome.kind === "moved" && guessedEmpty) {
          guessedEmpty = false;
          before = await load();
          continue;
        }
        if (outcome.kind === "moved") {
          // Someone else wrote to this stream (a second actor during a deploy): reload and decide again, once.
          this.forgetCache();
          const conflict = new ConcurrencyConflict(
            streamId,
            before.state.version,
            outcome.head?.version ?? 0,
          );
          if (attempt === 1) await this.writeBatch(batch, 2);
          else this.fail(batch, unavailable(), conflict);
          return;
        }
        this.counters.transactions++;
        this.cache = { state: decision.after.state, streamType: outcome.result.streamType };
        this.recentIds.remember(committedRefs(decision, streamId));
        this.watchers.publishCommit(outcome.result, decision.events);
        this.feed ??= feedNotifier(this.env);
        this.feed.committed(); // the global feed's watchers (issue 12)
        this.answer(decision, outcome.result, { takenAt, databaseMs });
        return;
      }
    } catch (error) {
      this.forgetCache();
      this.fail(batch, toFailure(error), error);
    }
  }

  /** Answers every request of a decided batch; `commit` is the write, if the batch wrote. */
  private answer(
    decision: BatchDecision<PendingAppend>,
    commit: AppendResult | undefined,
    times: { takenAt: number; databaseMs: number },
  ): void {
    const streamId = this.requireStreamId();
    const streamType = commit?.streamType ?? decision.after.streamType ?? DEFAULT_STREAM_TYPE;
    const finishedAt = Date.now();
    for (const { append: pending, verdict } of decision.decided) {
      if (verdict.kind === "refused") {
        this.refuse(pending, verdict.failure);
        continue;
      }
      this.turns.done(pending.command.turn);
      // A webhook redelivery is answered with the first delivery's ids (its own are new ones).
      const eventIds =
        verdict.kind === "repeat" && verdict.eventIds !== undefined
          ? verdict.eventIds
          : pending.events.map((item) => item.event_id);
      const { versions } = verdict;
      pending.resolve({
        ok: true,
        result:
          verdict.kind === "accepted" && commit !== undefined
            ? {
                streamId,
                streamType,
                version: versions[versions.length - 1] ?? commit.version,
                versions,
                eventIds,
                idempotent: false,
                snapshotVersion: commit.snapshotVersion,
              }
            : repeatedAppend(streamId, streamType, eventIds, versions),
        timing: {
          queueMs: Math.max(0, times.takenAt - pending.enqueuedAt),
          databaseMs: times.databaseMs,
          totalMs: finishedAt - pending.enqueuedAt,
        },
      });
    }
    if (this.turns.holding > 0) this.releaseTurns();
  }

  /**
   * A refused append is answered now, unless it is a version conflict of an exact
   * expected version: that one carries the writer's turn, and is held while writers
   * refused before it wait (turns.ts, decision 23).
   */
  private refuse(pending: PendingAppend, failure: Failure): void {
    const { command } = pending;
    if (
      failure.code !== "concurrency_conflict" ||
      exactExpectedVersion(command.expectedVersion) === undefined
    ) {
      this.turns.done(command.turn);
      pending.resolve(failure);
      return;
    }
    const { turn, hold } = this.turns.refused(command.turn);
    if (!hold) {
      pending.resolve({ ...failure, details: { ...failure.details, turn } });
      return;
    }
    this.turns.hold({ ...pending, command: { ...command, turn }, released: true }, turn);
    this.turnTimer ??= setInterval(() => this.releaseTurns(), TURN_GRACE_MS / 2);
  }

  /** Held appends whose turn has come are decided again. */
  private releaseTurns(): void {
    const released = this.turns.release();
    if (this.turns.holding === 0 && this.turnTimer !== undefined) {
      clearInterval(this.turnTimer);
      this.turnTimer = undefined;
    }
    if (released.length === 0) return;
    this.queue.push(...released);
    this.startWriter();
  }

  /** Answers appends with a failure; one that is the service's fault is logged once for them all. */
  private fail(appends: PendingAppend[], failure: Failure, cause: unknown): void {
    logServiceFault(failure, cause, {
      stream_id: this.requireStreamId(),
      operation: "append",
      requests: appends.length,
    });
    for (const pending of appends) pending.resolve(failure);
  }

  /** The cached stream, loading it (once, however many callers wait) when absent. */
  private async loaded(store: PgEventStore): Promise<StreamDraft> {
    if (this.cache) return this.cache;
    this.loading ??= this.load(store).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** One statement (head, newest snapshot, tail), unless the snapshot is unusable or the tail long. */
  private async load(store: PgEventStore): Promise<StreamDraft> {
    const loaded = await store.loadStream(this.requireStreamId());
    this.counters.loads++;
    if (loaded === null || loaded.head.version === 0) {
      this.cache = EMPTY_STREAM;
      return this.cache;
    }
    const rebuilt = await new StateRebuilder(store).rebuildLoaded(loaded);
    this.cache = { state: rebuilt.state, streamType: loaded.head.stream_type };
    return this.cache;
  }

  /**
   * A read of this actor's stream: refused when the caller's token does not cover the
   * stream's type, answered with a failure when the store fails or the database does not
   * answer in time (which also drops the cache; `operation` names the
   * read in the log line of a failure that is the service's fault).
   */
  private async readStream<T extends { ok: true }>(
    operation: string,
    streamId: string,
    access: StreamAccess,
    read: (store: PgEventStore) => Promise<T | Failure>,
    /** "load": the read itself is one statement at most, bounded by its fetch; only a cold load needs the limit. */
    limit: "load" | "whole" = "load",
  ): Promise<T | Failure> {
    const bound = this.bind(streamId);
    if (bound) return bound;
    try {
      const store = this.openStore();
      const bounded = limit === "whole" || this.cache === undefined;
      const readIfAllowed = async () => (await this.refuseType(store, access)) ?? (await read(store));
      return await (bounded ? this.withDatabaseLimit(readIfAllowed()) : readIfAllowed());
    } catch (error) {
      const failure = logServiceFault(toFailure(error), error, { stream_id: streamId, operation });
      if (failure.code === "unavailable") this.forgetCache();
      return failure;
    }
  }

  /** A failure when the caller's token does not cover this stream's type (known once it has events). */
  private async refuseType(store: PgEventStore, access: StreamAccess): Promise<Failure | undefined> {
    if (access.allowedStreamTypes === undefined) return undefined;
    return forbiddenType(access.allowedStreamTypes, (await this.loaded(store)).streamType);
  }

  /**
   * The store, over Neon's SQL-over-HTTP: one request per statement and nothing held
   * between them, so an idle actor has no open socket (it can hibernate with watchers
   * attached, and be evicted) and no server connection (decision 24).
   */
  private openStore(): PgEventStore {
    if (this.store) return this.store;
    const config = workerConfig(this.env);
    const client = openHttpClient(config.database, { timeoutMs: config.databaseTimeoutMs });
    this.store = new PgEventStore(
      countStatements(client, () => {
        this.counters.statements++;
      }),
    );
    return this.store;
  }

  /**
   * Forgets the cached stream after a failure: the outcome of a write in flight is
   * unknown, so the next request loads the stream again. There is no connection to drop.
   */
  private forgetCache(): void {
    this.cache = undefined;
  }

  /** `work`, failed with DatabaseTimeout if the database has not answered within DATABASE_TIMEOUT_MS. */
  private withDatabaseLimit<T>(work: Promise<T>): Promise<T> {
    return withTimeout(work, workerConfig(this.env).databaseTimeoutMs);
  }

  private requireStreamId(): string {
    if (this.streamId === undefined) throw new Error("the actor was used before it knew its stream");
    return this.streamId;
  }
}

/**
 * The webhook deliveries of a batch, and what the batch has learned of them: those found
 * recorded (`known`, by deliveryKey), and those not yet known either way (`unknown`),
 * which the append statement probes.
 */
function batchDeliveries(batch: readonly PendingAppend[]) {
  const asked = new Map<string, WebhookDelivery>();
  for (const { command } of batch) {
    if (command.delivery !== undefined) asked.set(deliveryKey(command.delivery), command.delivery);
  }
  const known = new Map<string, RecordedDelivery>();
  return {
    known,
    unknown: () => [...asked].filter(([key]) => !known.has(key)).map(([, delivery]) => delivery),
    /** Remembers recorded deliveries the batch asked about; false when there was nothing new. */
    learn(recorded: readonly RecordedDelivery[]): boolean {
      const news = recorded.filter((delivery) => {
        const key = deliveryKey(delivery);
        return asked.has(key) && !known.has(key);
      });
      for (const delivery of news) known.set(deliveryKey(delivery), delivery);
      return news.length > 0;
    },
  };
}

/** Whether the batch's first request starts a workflow, which only an empty stream takes. */
function startsWorkflow(batch: readonly PendingAppend[]): boolean {
  return batch[0]?.events[0]?.event.type === "workflow_started";
}

/** Where the accepted requests' caller-chosen ids are stored once the batch commits. */
function committedRefs(decision: BatchDecision<PendingAppend>, streamId: string): StoredEventRef[] {
  const refs: StoredEventRef[] = [];
  for (const { append, verdict } of decision.decided) {
    if (verdict.kind !== "accepted" || append.callerIds.length === 0) continue;
    const chosen = new Set(append.callerIds);
    for (const [index, item] of append.events.entries()) {
      const version = verdict.versions[index];
      if (chosen.has(item.event_id) && version !== undefined) {
        refs.push({ event_id: item.event_id, stream_id: streamId, version });
      }
    }
  }
  return refs;
}
