import { z } from "zod";
import { WATCH_PROTOCOL, WatchServerMessage } from "../src/actor/watch-messages";
import type {
  StoredEvent,
  TIMESTAMP_FIELD,
  WorkflowEventInput,
  WorkflowEventType,
} from "../src/events/types";
import type { JsonValue } from "../src/events/wire";
import type { FeedEvent } from "../src/feed/feed-event";
import { FeedWatchServerMessage } from "../src/feed/feed-messages";
import {
  CreatedSubscription,
  DeadLettersPage,
  FeedPage,
  SubscriptionList,
  SubscriptionStatus,
} from "../src/http/feed-schemas";
import {
  AppendResponse,
  EventsPage,
  ProblemResponse,
  StateResponse,
  StreamHeadResponse,
  StreamsPage,
} from "../src/http/schemas";
import type { StateCondition } from "../src/state/state-condition";
import { emptyWorkflowState, type WorkflowState, type WorkflowStatus } from "../src/state/workflow-state";
import { backoffDelay, DEFAULT_RETRY, type RetryOptions, retryAfterMs, sleep } from "./backoff";
import {
  ConflictError,
  errorFromProblem,
  Forbidden,
  GlyphError,
  NotFound,
  ProtocolError,
  Unavailable,
} from "./errors";

export * from "./backoff";
export * from "./errors";
export type { FeedEvent, JsonValue, StateCondition, StoredEvent, WorkflowState, WorkflowStatus };

// The glyph-streams client: fetch and WebSocket globals only, so it runs in Node ≥ 22,
// browsers and Workers. Every answer is checked against the server's own zod schemas.

/** A workflow event as a client sends it: its timestamp may be left out (the server sets it). */
export type EventInput = {
  [K in WorkflowEventType]: Omit<Extract<WorkflowEventInput, { type: K }>, (typeof TIMESTAMP_FIELD)[K]> &
    Partial<Record<(typeof TIMESTAMP_FIELD)[K], string>>;
}[WorkflowEventType];

/** One event to append: a bare event, or one with metadata (and, if you must, its own id). */
export type NewEvent = EventInput | { event: EventInput; metadata?: JsonValue; event_id?: string };

export type ExpectedVersion = "any" | "no_stream" | "stream_exists" | number;

export interface AppendOptions {
  expectedVersion?: ExpectedVersion;
  /** A condition on the workflow state (412 ConditionFailed when it does not hold). */
  if?: StateCondition;
  /** The type of a new stream (default "workflow"). */
  streamType?: string;
  /** The turn of the last ConflictError for this write (ConflictError.turn): retries are served in the order first refused. */
  turn?: string;
  signal?: AbortSignal;
}

export type AppendResult = z.output<typeof AppendResponse>;
/** A subscription's settings and status, as GET /subscriptions/:name answers (never its secret). */
export type Subscription = z.output<typeof SubscriptionStatus>;
/** What putSubscription answers: on creation (201) the secret too, shown only then; on a change (200) not. */
export type PutSubscriptionResult =
  | (Subscription & { created: true; secret: string })
  | (Subscription & { created: false });
/** A delivery the receiver did not take in time, as it was sent. */
export type DeadLetter = z.output<typeof DeadLettersPage>["dead_letters"][number];
/** Where a subscription starts, or a replay moves it: "start", "now" or a checkpoint of the feed. */
export type SubscriptionFrom = "start" | "now" | (string & {});
/** How many dead letters a re-drive queued. */
export type RedriveResult = z.output<typeof RedriveAnswer>;
export type StateResult = z.output<typeof StateResponse>;
export type StreamHead = z.output<typeof StreamHeadResponse>;

export interface ClientOptions {
  /** The service's base URL, such as http://127.0.0.1:8787. */
  url: string | URL;
  token?: string | undefined;
  retry?: RetryOptions;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Defaults to the global WebSocket. */
  WebSocket?: typeof WebSocket;
}

export interface HandleOptions {
  /** Decisions in all before the last ConflictError is thrown (default 50). */
  attempts?: number;
  streamType?: string;
  signal?: AbortSignal;
}

interface FollowOptions {
  signal?: AbortSignal;
  /** Called before each reconnection, with the error or close that caused it. */
  onReconnect?: (reason: string, attempt: number) => void;
  /** The ceiling of reconnection backoff (default: the client's retry maxMs). */
  maxBackoffMs?: number;
}

export interface WatchAllOptions extends FollowOptions {
  /**
   * Yield the events after this checkpoint (default: from the feed's start); "now": only
   * those committed after the first connection opened.
   */
  after?: string;
  streamType?: string | string[];
  /** Called each time a connection has caught up, with the head's checkpoint. */
  onCaughtUp?: (checkpoint: string) => void;
}

export interface FeedOptions {
  after?: string;
  streamType?: string | string[];
  eventType?: WorkflowEventType | WorkflowEventType[];
  /** Events per request (default 500). */
  limit?: number;
  signal?: AbortSignal;
}

export interface WatchOptions {
  /** Yield the events after this version (default 0: from the first). */
  from?: number;
  signal?: AbortSignal;
  /** Called each time a connection has caught up with the stream's head. */
  onCaughtUp?: (version: number) => void;
  /** Called before each reconnection, with the error or close that caused it. */
  onReconnect?: (reason: string, attempt: number) => void;
  /** The ceiling of reconnection backoff (default: the client's retry maxMs). */
  maxBackoffMs?: number;
}

export interface SubscriptionSettings {
  /** Where to POST deliveries (http or https). */
  url: string;
  /** Only these stream types (default: all). */
  streamType?: string | string[];
  /** Only these event types (default: all). */
  eventType?: WorkflowEventType | WorkflowEventType[];
  /** Where a new subscription starts (default "now"); ignored when it exists: replaySubscription moves it. */
  from?: SubscriptionFrom;
  /** Events per delivery, 1 to 100 (default 1). */
  batchSize?: number;
  signal?: AbortSignal;
}

export interface DeadLettersOptions {
  /** The id of the last dead letter you have (default: from the first). */
  after?: number;
  /** Dead letters per request (default the server's, 100). */
  limit?: number;
  signal?: AbortSignal;
}

// POST …/dead-letters/redrive's answer, made as the route makes it (src/http/routes/subscriptions.ts).
const RedriveAnswer = SubscriptionStatus.pick({ name: true }).extend({
  redriven: SubscriptionStatus.shape.dead_letters,
});
const NoContent = z.undefined();

const isWrapped = (item: NewEvent): item is Exclude<NewEvent, EventInput> =>
  typeof (item as { event?: unknown }).event === "object" && !("type" in item);

export class GlyphClient {
  readonly url: URL;
  readonly #token: string | undefined;
  readonly #retry: Required<RetryOptions>;
  readonly #fetch: typeof fetch;
  readonly #WebSocket: typeof WebSocket | undefined;

  constructor(options: ClientOptions) {
    this.url = new URL(options.url);
    this.#token = options.token;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
  }

  /**
   * Appends events atomically and returns their versions. Each event gets an id here, and
   * every retry (503, network failure, timeout) sends the same ids, so a retry of an
   * append that was written answers with its versions and writes nothing again.
   */
  async append(
    streamId: string,
    events: readonly NewEvent[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    const body = {
      events: events.map((item) => {
        const wrapped = isWrapped(item) ? item : { event: item };
        return { ...wrapped, event_id: wrapped.event_id ?? crypto.randomUUID() };
      }),
      ...(options.expectedVersion === undefined ? {} : { expected_version: options.expectedVersion }),
      ...(options.if === undefined ? {} : { if: options.if }),
      ...(options.streamType === undefined ? {} : { stream_type: options.streamType }),
      ...(options.turn === undefined ? {} : { turn: options.turn }),
    };
    return this.#request(
      "POST",
      `/streams/${encodeURIComponent(streamId)}/events`,
      AppendResponse,
      JSON.stringify(body),
      options.signal,
    );
  }

  /**
   * The command pattern: reads the state, asks `decide` for the events, appends them at the
   * version read, and on a version conflict reads and decides again, so concurrent writers
   * of one workflow never lose an update. `decide` returning no events appends nothing (null).
   */
  async handle(
    streamId: string,
    decide: (state: WorkflowState, version: number) => readonly NewEvent[] | Promise<readonly NewEvent[]>,
    options: HandleOptions = {},
  ): Promise<AppendResult | null> {
    const attempts = options.attempts ?? 50;
    let turn: string | undefined;
    for (let attempt = 0; ; attempt++) {
      let current: { version: number; state: WorkflowState };
      try {
        current = await this.state(streamId, options.signal ? { signal: options.signal } : {});
      } catch (error) {
        if (!(error instanceof NotFound) || error.code !== "stream_not_found") throw error;
        current = { version: 0, state: emptyWorkflowState() };
      }
      const events = await decide(current.state, current.version);
      if (events.length === 0) return null;
      try {
        return await this.append(streamId, events, {
          expectedVersion: current.version === 0 ? "no_stream" : current.version,
          ...(options.streamType === undefined ? {} : { streamType: options.streamType }),
          ...(turn === undefined ? {} : { turn }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
      } catch (error) {
        if (!(error instanceof ConflictError) || attempt + 1 >= attempts) throw error;
        turn = error.turn ?? turn;
        await sleep(backoffDelay(attempt, { baseMs: 10, maxMs: 500 }), options.signal);
      }
    }
  }

  /** The state now, or at version `at`. */
  state(streamId: string, options: { at?: number; signal?: AbortSignal } = {}): Promise<StateResult> {
    const query = options.at === undefined ? "" : `?at=${options.at}`;
    return this.#request(
      "GET",
      `/streams/${encodeURIComponent(streamId)}/state${query}`,
      StateResponse,
      undefined,
      options.signal,
    );
  }

  /** The stream's head: version, type, status, timestamps. */
  head(streamId: string, options: { signal?: AbortSignal } = {}): Promise<StreamHead> {
    return this.#request(
      "GET",
      `/streams/${encodeURIComponent(streamId)}`,
      StreamHeadResponse,
      undefined,
      options.signal,
    );
  }

  /** The stream's events, page by page (`limit` per request), forwards or backwards. */
  async *events(
    streamId: string,
    options: { from?: number; direction?: "forward" | "backward"; limit?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<StoredEvent, void, undefined> {
    const query = new URLSearchParams();
    if (options.from !== undefined) query.set("from", String(options.from));
    if (options.direction !== undefined) query.set("direction", options.direction);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    let path: string | null = `/streams/${encodeURIComponent(streamId)}/events?${query}`;
    while (path !== null) {
      const page: z.output<typeof EventsPage> = await this.#request(
        "GET",
        path,
        EventsPage,
        undefined,
        options.signal,
      );
      yield* page.events;
      path = page.next;
    }
  }

  /** Every stream's head, page by page, filtered by type and status. */
  async *list(
    options: { type?: string; status?: WorkflowStatus; limit?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<StreamHead, void, undefined> {
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams();
      if (options.type !== undefined) query.set("type", options.type);
      if (options.status !== undefined) query.set("status", options.status);
      if (options.limit !== undefined) query.set("limit", String(options.limit));
      if (cursor !== null) query.set("cursor", cursor);
      const page: z.output<typeof StreamsPage> = await this.#request(
        "GET",
        `/streams?${query}`,
        StreamsPage,
        undefined,
        options.signal,
      );
      yield* page.streams;
      cursor = page.next_cursor;
    } while (cursor !== null);
  }

  /**
   * Every event after `from`, then live, forever (until `signal` aborts or the loop
   * breaks). Reconnects with backoff from the last version yielded, so it never yields
   * a duplicate or skips a version. Throws a typed error (Unauthorized, Forbidden...) when
   * the service refuses the watcher.
   */
  async *watch(streamId: string, options: WatchOptions = {}): AsyncGenerator<StoredEvent, void, undefined> {
    let last = options.from ?? 0;
    yield* this.#follow<StoredEvent>({
      url: () => `/streams/${encodeURIComponent(streamId)}/watch?from=${last}`,
      probe: (signal) => this.head(streamId, signal ? { signal } : {}),
      options,
      handle: (raw) => {
        const parsed = WatchServerMessage.safeParse(raw);
        if (!parsed.success) return { reconnect: "an unreadable message" };
        const message = parsed.data;
        if (message.type === "caught_up") options.onCaughtUp?.(message.version);
        if (message.type === "error" && message.code === "forbidden") {
          return { error: new Forbidden(message.message, 403, "forbidden") };
        }
        if (message.type !== "event" || message.event.version <= last) return {};
        if (message.event.version !== last + 1) return { reconnect: `a gap after version ${last}` };
        last = message.event.version;
        return { event: message.event };
      },
    });
  }

  /**
   * The global feed's events after the checkpoint `after` (all of them without it), page
   * by page, up to its current end. Each event's `checkpoint` is where to continue.
   */
  async *feed(options: FeedOptions = {}): AsyncGenerator<FeedEvent, void, undefined> {
    let after = options.after;
    const limit = options.limit ?? 500;
    for (;;) {
      const query = new URLSearchParams({ limit: String(limit) });
      if (after !== undefined) query.set("after", after);
      if (options.streamType !== undefined) query.set("stream_type", [options.streamType].flat().join(","));
      if (options.eventType !== undefined) query.set("event_type", [options.eventType].flat().join(","));
      const page: z.output<typeof FeedPage> = await this.#request(
        "GET",
        `/events?${query}`,
        FeedPage,
        undefined,
        options.signal,
      );
      yield* page.events;
      after = page.next;
      if (page.events.length < limit) return;
    }
  }

  /**
   * Every event of the feed after the checkpoint `after`, then live (GET /watch), until
   * `signal` aborts or the loop breaks; reconnects with backoff from the last checkpoint.
   */
  async *watchAll(options: WatchAllOptions = {}): AsyncGenerator<FeedEvent, void, undefined> {
    let after = options.after;
    const seen = new Set<string>();
    yield* this.#follow<FeedEvent>({
      url: () => {
        const query = new URLSearchParams();
        if (after !== undefined) query.set("after", after);
        if (options.streamType !== undefined) query.set("stream_type", [options.streamType].flat().join(","));
        return `/watch?${query}`;
      },
      probe: async (signal) => {
        for await (const _ of this.feed({ limit: 1, ...(signal ? { signal } : {}) })) break;
      },
      options,
      handle: (raw) => {
        const parsed = FeedWatchServerMessage.safeParse(raw);
        if (!parsed.success) return { reconnect: "an unreadable message" };
        const message = parsed.data;
        // after=now: where the feed stood when this socket opened, so that a reconnection
        // before the first event resumes there instead of at a later "now".
        if (message.type === "started") after = message.checkpoint;
        if (message.type === "caught_up") {
          after = message.checkpoint;
          options.onCaughtUp?.(message.checkpoint);
        }
        if (message.type === "error" && message.code === "forbidden") {
          return { error: new Forbidden(message.message, 403, "forbidden") };
        }
        if (message.type !== "event") return {};
        // Checkpoints are opaque and the server resumes after the one given; event ids
        // guard against a duplicate all the same.
        if (seen.has(message.event.event_id)) return {};
        seen.add(message.event.event_id);
        if (seen.size > 10_000) seen.delete(seen.values().next().value as string);
        after = message.event.checkpoint;
        return { event: message.event };
      },
    });
  }

  // Subscriptions (an admin token): the global feed POSTed to an HTTP endpoint, signed.

  /**
   * Creates the subscription `name`, or changes the URL, filters and batch size of the one
   * that exists (`created` says which). Only a creation answers the `whsec_` secret the
   * deliveries are signed with: keep it. (Were the answer to a creation lost and the
   * request retried, the retry answers `created: false` without it: delete and create
   * again to get a new one.)
   */
  async putSubscription(name: string, settings: SubscriptionSettings): Promise<PutSubscriptionResult> {
    const list = <T>(value: T | T[] | undefined) => (value === undefined ? undefined : [value].flat());
    const streamTypes = list(settings.streamType);
    const eventTypes = list(settings.eventType);
    const body = {
      url: settings.url,
      ...(streamTypes === undefined ? {} : { stream_types: streamTypes }),
      ...(eventTypes === undefined ? {} : { event_types: eventTypes }),
      ...(settings.from === undefined ? {} : { from: settings.from }),
      ...(settings.batchSize === undefined ? {} : { batch_size: settings.batchSize }),
    };
    const answer = await this.#exchange(
      "PUT",
      subscriptionPath(name),
      (status) => (status === 201 ? CreatedSubscription : SubscriptionStatus),
      JSON.stringify(body),
      settings.signal,
    );
    if (answer.status === 201) {
      // Checked by CreatedSubscription, the schema of a 201.
      const { secret, ...subscription } = answer.data as z.output<typeof CreatedSubscription>;
      return { ...subscription, created: true, secret };
    }
    return { ...answer.data, created: false };
  }

  /** The subscription's settings and status: checkpoint, lag, last delivery and error, attempts, dead letters. */
  subscription(name: string, options: { signal?: AbortSignal } = {}): Promise<Subscription> {
    return this.#request("GET", subscriptionPath(name), SubscriptionStatus, undefined, options.signal);
  }

  /** Every subscription with its status, by name. */
  async subscriptions(options: { signal?: AbortSignal } = {}): Promise<Subscription[]> {
    return (await this.#request("GET", "/subscriptions", SubscriptionList, undefined, options.signal))
      .subscriptions;
  }

  /** Holds deliveries (the one in flight is sent again from the start on resume). */
  pauseSubscription(name: string, options: { signal?: AbortSignal } = {}): Promise<Subscription> {
    return this.#request(
      "POST",
      `${subscriptionPath(name)}/pause`,
      SubscriptionStatus,
      undefined,
      options.signal,
    );
  }

  /** Delivers again, at once (a backoff in progress is cut short). */
  resumeSubscription(name: string, options: { signal?: AbortSignal } = {}): Promise<Subscription> {
    return this.#request(
      "POST",
      `${subscriptionPath(name)}/resume`,
      SubscriptionStatus,
      undefined,
      options.signal,
    );
  }

  /**
   * Moves the subscription's checkpoint, back or forward: "start" delivers everything again,
   * "now" skips to the feed's head, a checkpoint delivers the events after it. The delivery
   * in flight is dropped. Like every call it is retried after a network failure or a 503,
   * which repeats the move: the same place for "start" or a checkpoint, but a later head
   * for "now", so events committed in between would be skipped; to be exact, read the
   * feed's head yourself and replay to that checkpoint.
   */
  replaySubscription(
    name: string,
    from: SubscriptionFrom,
    options: { signal?: AbortSignal } = {},
  ): Promise<Subscription> {
    return this.#request(
      "POST",
      `${subscriptionPath(name)}/replay`,
      SubscriptionStatus,
      JSON.stringify({ from }),
      options.signal,
    );
  }

  /** Deletes the subscription and its dead letters (NotFound when there is none). */
  async deleteSubscription(name: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#request("DELETE", subscriptionPath(name), NoContent, undefined, options.signal);
  }

  /** The subscription's dead letters, oldest first, page by page. */
  async *deadLetters(
    name: string,
    options: DeadLettersOptions = {},
  ): AsyncGenerator<DeadLetter, void, undefined> {
    let after: string | null = options.after === undefined ? null : String(options.after);
    do {
      const query = new URLSearchParams();
      if (after !== null) query.set("after", after);
      if (options.limit !== undefined) query.set("limit", String(options.limit));
      const page: z.output<typeof DeadLettersPage> = await this.#request(
        "GET",
        `${subscriptionPath(name)}/dead-letters?${query}`,
        DeadLettersPage,
        undefined,
        options.signal,
      );
      yield* page.dead_letters;
      after = page.next;
    } while (after !== null);
  }

  /**
   * Delivers dead letters again (all of them, or those of `ids`), before the feed's next
   * events; each leaves the list once its receiver takes it. Answers how many were queued.
   */
  redriveDeadLetters(
    name: string,
    options: { ids?: number[]; signal?: AbortSignal } = {},
  ): Promise<RedriveResult> {
    return this.#request(
      "POST",
      `${subscriptionPath(name)}/dead-letters/redrive`,
      RedriveAnswer,
      JSON.stringify(options.ids === undefined ? {} : { ids: options.ids }),
      options.signal,
    );
  }

  /** A WebSocket followed across reconnections: `handle` turns each message into what to do. */
  async *#follow<T>(spec: {
    url: () => string;
    probe: (signal: AbortSignal | undefined) => Promise<unknown>;
    options: FollowOptions;
    handle: (message: unknown) => { event?: T; reconnect?: string; error?: Error };
  }): AsyncGenerator<T, void, undefined> {
    const WebSocketClass = this.#WebSocket;
    if (WebSocketClass === undefined)
      throw new GlyphError("This runtime has no global WebSocket.", 0, "no_websocket");
    const { signal, onReconnect, maxBackoffMs } = spec.options;
    let failures = 0;
    while (!signal?.aborted) {
      const url = new URL(spec.url(), this.url);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const connection = new Connection(
        new WebSocketClass(url.toString(), [
          WATCH_PROTOCOL,
          ...(this.#token ? [`bearer.${this.#token}`] : []),
        ]),
        signal,
      );
      let reason = "";
      try {
        for (;;) {
          const item = await connection.next();
          if (item.kind === "open") continue;
          if (item.kind === "close") {
            if (signal?.aborted) return;
            if (item.code === 1008)
              throw new Forbidden(item.reason || "The token does not cover this.", 403, "forbidden");
            reason = `closed ${item.code}${item.reason ? ` (${item.reason})` : ""}`;
            break;
          }
          let raw: unknown;
          try {
            raw = JSON.parse(item.data);
          } catch {
            raw = undefined;
          }
          const action = spec.handle(raw);
          if (action.error) throw action.error;
          if (action.reconnect !== undefined) {
            reason = action.reconnect;
            break;
          }
          if (action.event !== undefined) {
            failures = 0;
            yield action.event;
          }
        }
      } finally {
        connection.close();
      }
      if (!connection.opened) {
        // Refused before the upgrade (401, 403, a bad id) looks like a network failure to a
        // WebSocket: ask over HTTP, which answers why.
        try {
          await spec.probe(signal);
        } catch (error) {
          if (!(error instanceof NotFound) && !(error instanceof Unavailable)) throw error;
        }
      }
      onReconnect?.(reason, failures + 1);
      await sleep(
        backoffDelay(failures++, { baseMs: this.#retry.baseMs, maxMs: maxBackoffMs ?? this.#retry.maxMs }),
        signal,
      ).catch(() => undefined);
    }
  }

  /** One request with retries on 503, network failures and timeouts; the answer checked by `schema`. */
  async #request<T extends z.ZodType>(
    method: string,
    path: string,
    schema: T,
    body?: string,
    signal?: AbortSignal,
  ): Promise<z.output<T>> {
    return (await this.#exchange(method, path, () => schema, body, signal)).data;
  }

  /** As #request, the answer checked by the schema of its status, which comes back with it. */
  async #exchange<T extends z.ZodType>(
    method: string,
    path: string,
    schemaFor: (status: number) => T,
    body?: string,
    signal?: AbortSignal,
  ): Promise<{ status: number; data: z.output<T> }> {
    const url = new URL(path, this.url);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let lastError: GlyphError | undefined;
    for (let attempt = 0; attempt < this.#retry.attempts; attempt++) {
      if (attempt > 0) {
        await sleep(
          backoffDelay(attempt - 1, this.#retry, lastError?.status === 503 ? retryAfterOf(lastError) : 0),
          signal,
        );
      }
      const timeout = AbortSignal.timeout(this.#retry.timeoutMs);
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body }),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const what = timeout.aborted
          ? `no answer within ${this.#retry.timeoutMs} ms`
          : `${error instanceof Error ? error.message : String(error)}`;
        lastError = new Unavailable(`${method} ${url.pathname} failed: ${what}.`, 0, "network", undefined, {
          cause: error,
        });
        continue;
      }
      let json: unknown;
      try {
        // 204 No Content (a deletion) has no body to read.
        json = response.status === 204 ? await response.body?.cancel() : await response.json();
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (response.status >= 500 || timeout.aborted) {
          lastError = new Unavailable(
            `${method} ${url.pathname}: the answer was cut off.`,
            response.status,
            "network",
          );
          continue;
        }
        throw new ProtocolError(
          `${method} ${url.pathname} answered ${response.status} with no JSON.`,
          response.status,
          "protocol",
          undefined,
          { cause: error },
        );
      }
      if (!response.ok) {
        const problem = ProblemResponse.safeParse(json);
        const error = problem.success
          ? errorFromProblem(problem.data)
          : new GlyphError(`${method} ${url.pathname} answered ${response.status}.`, response.status, "http");
        if (response.status === 503) {
          lastError = error;
          retryAfter.set(error, retryAfterMs(response.headers.get("retry-after")));
          continue;
        }
        throw error;
      }
      const parsed = schemaFor(response.status).safeParse(json);
      if (!parsed.success) {
        throw new ProtocolError(
          `${method} ${url.pathname} answered something this client does not understand: ${parsed.error.issues[0]?.message ?? "invalid"} at ${parsed.error.issues[0]?.path.join(".") ?? ""}.`,
          response.status,
          "protocol",
        );
      }
      return { status: response.status, data: parsed.data };
    }
    throw lastError ?? new Unavailable("No attempt was made.", 0, "network");
  }
}

const subscriptionPath = (name: string) => `/subscriptions/${encodeURIComponent(name)}`;

const retryAfter = new WeakMap<GlyphError, number>();
const retryAfterOf = (error: GlyphError) => retryAfter.get(error) ?? 0;

type ConnectionItem =
  | { kind: "open" }
  | { kind: "message"; data: string }
  | { kind: "close"; code: number; reason: string };

/** A WebSocket as a queue of what happened to it, read one item at a time; pings every 30 s. */
class Connection {
  opened = false;
  readonly #items: ConnectionItem[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  readonly #socket: WebSocket;
  readonly #keepAlive: ReturnType<typeof setInterval>;
  readonly #onAbort: () => void;
  readonly #signal: AbortSignal | undefined;

  constructor(socket: WebSocket, signal: AbortSignal | undefined) {
    this.#socket = socket;
    this.#signal = signal;
    const push = (item: ConnectionItem) => {
      if (this.#closed) return;
      if (item.kind === "close") this.#closed = true;
      this.#items.push(item);
      this.#wake?.();
    };
    socket.addEventListener("open", () => {
      this.opened = true;
      push({ kind: "open" });
    });
    socket.addEventListener("message", (event) => {
      push({ kind: "message", data: typeof event.data === "string" ? event.data : String(event.data) });
    });
    socket.addEventListener("close", (event) =>
      push({ kind: "close", code: event.code, reason: event.reason }),
    );
    socket.addEventListener("error", () => push({ kind: "close", code: 1006, reason: "connection failed" }));
    this.#keepAlive = setInterval(() => {
      if (socket.readyState === 1) socket.send('{"type":"ping"}');
    }, 30_000);
    this.#onAbort = () => push({ kind: "close", code: 1000, reason: "aborted" });
    if (signal?.aborted) this.#onAbort();
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  async next(): Promise<ConnectionItem> {
    for (;;) {
      const item = this.#items.shift();
      if (item) return item;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }

  close(): void {
    clearInterval(this.#keepAlive);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#closed = true;
    try {
      if (this.#socket.readyState <= 1) this.#socket.close(1000);
    } catch {
      // already closing
    }
  }
}
