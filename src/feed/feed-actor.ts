import { DurableObject } from "cloudflare:workers";
import { PING_FRAME, PONG_FRAME } from "../actor/watch-messages";
import { parseStreamTypesHeader } from "../actor/watch-socket";
import { workerConfig } from "../config/worker-config";
import { openHttpClient } from "../db/http-client";
import type { SqlQueryable } from "../db/sql-client";
import { withTimeout } from "../db/with-timeout";
import { logServiceFault, toFailure } from "../events/failure";
import { decodeCheckpoint, type FeedCheckpoint } from "./checkpoint";
import type { FeedEvent } from "./feed-event";
import { FeedNotifier } from "./feed-notifier";
import { feedHead, readFeed } from "./feed-statements";
import { FeedWatchers } from "./feed-watchers";

/** Headers the Worker uses to hand a /watch request to the feed actor. */
export const FEED_WATCH_HEADERS = {
  /** The checkpoint to start after (encoded), or FEED_NOW. */
  after: "x-glyph-feed-after",
  /** JSON array of the stream types the watcher gets; absent for all. */
  streamTypes: "x-glyph-feed-stream-types",
  protocol: "x-glyph-watch-protocol",
};

/** The `after` header's value for "from the feed's head": the actor reads its head when the socket opens. */
export const FEED_NOW = "now";

/** The feed actor is one object: every all-streams watcher is on it. */
export const FEED_ACTOR_NAME = "feed";

/** Where the names of the subscriptions waiting for the next commit are kept. */
const LISTENERS_KEY = "listeners";

/** Events one read of the feed's new events takes; more are read at once, page after page. */
const TAIL_PAGE = 500;

/**
 * The feed actor: one Durable Object that holds every all-streams watcher (GET /watch)
 * and tails the global feed for them. Its tail is the checkpoint up to which every live
 * watcher has been sent what it wants; it reads on from there when a stream actor says
 * it committed (notify), and on a slow alarm as a backstop, so a commit made by anything
 * else (another deployment, a migration, a script) arrives too. Watchers still reading
 * history take one page each between two tail reads, bounded by the tail (see
 * FeedWatchers). Sockets hibernate; the tail is memory only: after an eviction the
 * watchers read on from their own cursors to a freshly read head.
 */
export class FeedActor extends DurableObject<Env> {
  private tail: FeedCheckpoint | undefined;
  /** Subscriptions to wake at the next commit (see listen); loaded from storage once. */
  private listeners: Promise<Set<string>> | undefined;
  /**
   * When a subscription last listened or was woken: one in the middle of a delivery is
   * no listener at that instant, but it follows the feed all the same.
   */
  private subscriptionsSeenAt = Number.NEGATIVE_INFINITY;
  private db: SqlQueryable | undefined;
  private running = false;
  private again = false;
  private readonly watchers: FeedWatchers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    this.watchers = new FeedWatchers(ctx);
  }

  /** A watcher: the Worker has checked the request and forwards the upgrade here. */
  override async fetch(request: Request): Promise<Response> {
    const afterHeader = request.headers.get(FEED_WATCH_HEADERS.after) ?? "";
    const fromNow = afterHeader === FEED_NOW;
    let after = fromNow ? undefined : decodeCheckpoint(afterHeader);
    const streamTypes = parseStreamTypesHeader(request.headers.get(FEED_WATCH_HEADERS.streamTypes));
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || (!fromNow && after === undefined)) {
      return new Response("expected a WebSocket upgrade with a checkpoint", { status: 400 });
    }
    if (fromNow) {
      // The head as it is now, read before the socket opens: every event committed once the
      // client sees it open is after it (the horizon only moves on, decision 31).
      try {
        after = await withTimeout(feedHead(this.database()), workerConfig(this.env).databaseTimeoutMs);
      } catch (error) {
        const failure = logServiceFault(toFailure(error), error, { operation: "watch_feed" });
        return Response.json(failure, { status: 503 });
      }
    }
    if (after === undefined) throw new Error("unreachable: no checkpoint to start after");
    const { 0: client, 1: server } = new WebSocketPair();
    this.watchers.accept(server, after, streamTypes, fromNow);
    await this.armPoll();
    this.wake();
    const protocol = request.headers.get(FEED_WATCH_HEADERS.protocol);
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: protocol ? { "sec-websocket-protocol": protocol } : {},
    });
  }

  /**
   * A stream actor committed: the feed may have new events. Answers whether anyone
   * follows the feed (watchers, or subscriptions seen within a poll interval: waiting to
   * be woken, or busy delivering since), so that a stream actor can stop calling while
   * nobody does (FeedNotifier).
   */
  async notify(): Promise<boolean> {
    const watched = this.watchers.any;
    if (watched) this.wake();
    const woken = await this.wakeListeners();
    if (woken > 0) this.subscriptionsSeenAt = Date.now();
    const subscribed = Date.now() - this.subscriptionsSeenAt < workerConfig(this.env).feedPollIntervalMs;
    return watched || subscribed;
  }

  /**
   * A subscription that has caught up asks to be woken at the next commit (once: it asks
   * again when it has caught up again). The names are kept in storage, so an eviction
   * forgets none; a subscription polls as well, so a lost wake-up only costs time.
   */
  async listen(subscription: string): Promise<void> {
    this.subscriptionsSeenAt = Date.now();
    const listeners = await this.loadListeners();
    if (listeners.has(subscription)) return;
    listeners.add(subscription);
    await this.ctx.storage.put(LISTENERS_KEY, [...listeners]);
  }

  /** The backstop: reads the feed while anyone watches, whoever wrote to it. */
  override async alarm(): Promise<void> {
    if (!this.watchers.any) return;
    this.wake();
    await this.armPoll();
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

  /** The listeners, read from storage once (concurrent callers share the one read, and so the one set). */
  private loadListeners(): Promise<Set<string>> {
    this.listeners ??= this.ctx.storage.get<string[]>(LISTENERS_KEY).then(
      (names) => new Set(names ?? []),
      (error: unknown) => {
        this.listeners = undefined;
        throw error;
      },
    );
    return this.listeners;
  }

  /** Wakes the subscriptions waiting for a commit; answers how many there were. */
  private async wakeListeners(): Promise<number> {
    const listeners = await this.loadListeners();
    if (listeners.size === 0) return 0;
    const names = [...listeners];
    listeners.clear();
    await this.ctx.storage.delete(LISTENERS_KEY);
    const namespace = this.env.SUBSCRIPTION_ACTOR;
    for (const name of names) {
      namespace
        .get(namespace.idFromName(name))
        .wake(name)
        .catch(() => undefined);
    }
    return names.length;
  }

  private async armPoll(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) !== null) return;
    await this.ctx.storage.setAlarm(Date.now() + workerConfig(this.env).feedPollIntervalMs);
  }

  private wake(): void {
    this.again = true;
    if (!this.running) void this.run();
  }

  /** The one loop that reads the feed: every wake-up while it runs is one more round. */
  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.again) {
        this.again = false;
        if (!this.watchers.any) {
          // Nobody to tell: the next watcher starts from a fresh head.
          this.tail = undefined;
          break;
        }
        try {
          await this.round();
        } catch (error) {
          const failure = logServiceFault(toFailure(error), error, { operation: "watch_feed" });
          this.watchers.closeAll(failure.code, failure.message);
          this.tail = undefined;
        }
        if (this.watchers.behind) this.again = true;
      }
    } finally {
      this.running = false;
    }
  }

  /** Publishes what is new after the tail, then gives each watcher still behind one page up to it. */
  private async round(): Promise<void> {
    const db = this.database();
    const limit = <T>(work: Promise<T>) => withTimeout(work, workerConfig(this.env).databaseTimeoutMs);
    if (this.tail === undefined) {
      this.watchers.resumeAll();
      this.tail = await limit(feedHead(db));
    }
    for (;;) {
      const events: FeedEvent[] = await limit(readFeed(db, { after: this.tail, limit: TAIL_PAGE }));
      this.watchers.publish(events);
      const last = events.at(-1);
      if (last !== undefined) this.tail = decodeCheckpoint(last.checkpoint) ?? this.tail;
      if (events.length < TAIL_PAGE) break;
    }
    await this.watchers.catchUp(
      (after, count, streamTypes, through) =>
        limit(readFeed(db, { after, limit: count, streamTypes, through })),
      this.tail,
    );
  }

  /** Over HTTP, like the stream actors (decision 24): nothing is held, so the object can hibernate between reads. */
  private database(): SqlQueryable {
    const config = workerConfig(this.env);
    this.db ??= openHttpClient(config.database, { timeoutMs: config.databaseTimeoutMs });
    return this.db;
  }
}

/** The feed actor's stub. */
export function feedActor(env: Env): DurableObjectStub<FeedActor> {
  return env.FEED_ACTOR.get(env.FEED_ACTOR.idFromName(FEED_ACTOR_NAME));
}

/** A stream actor's notifier: one stub for the actor's life (naming the object hashes its name), renewed after a failure. */
export function feedNotifier(env: Env): FeedNotifier {
  let stub: DurableObjectStub<FeedActor> | undefined;
  const call = async () => {
    stub ??= feedActor(env);
    try {
      return await stub.notify();
    } catch (error) {
      stub = undefined; // a stub that failed may be broken
      throw error;
    }
  };
  return new FeedNotifier(call, workerConfig(env).feedPollIntervalMs);
}
