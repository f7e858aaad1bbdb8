import type { Failure } from "../events/failure";
import type { AppendResult, ExpectedVersion, NewEvent, StreamHead } from "../events/store";
import type { StoredEvent } from "../events/types";
import type { WebhookDelivery } from "../events/webhook-deliveries";
import type { StateCondition } from "../state/state-condition";
import type { WorkflowState } from "../state/workflow-state";

// What the Worker and the stream actor say to each other over Durable Object RPC.
// Failures are returned as values, not thrown: an error crossing RPC loses its class
// and fields, and the HTTP layer needs both to answer with the right problem.

/**
 * An append as the Worker sends it over RPC: the condition travels as its JSON text,
 * because workerd's RPC serializer refuses an object with an own "__proto__" key, and
 * a step may be called that. The edge has validated it; the actor parses it back.
 */
export type AppendCall = Omit<AppendCommand, "condition"> & { condition?: string };

export interface AppendCommand {
  streamId: string;
  expectedVersion: ExpectedVersion;
  events: NewEvent[];
  streamType?: string;
  /** The body's `if`: written only when the state the append meets matches it (checked after the expected version). */
  condition?: StateCondition;
  /** The turn a 409 handed the caller, sent back with its retry (turns.ts): writers refused earlier win first. */
  turn?: string;
  /** The caller may only touch streams of these types (from its token or webhook source); absent for no limit. */
  allowedStreamTypes?: string[];
  /**
   * The webhook delivery these events came with: the append is idempotent on its source
   * and webhook-id (webhook-deliveries.ts), not on event ids, which are new ones.
   */
  delivery?: WebhookDelivery;
}

/** Limits from the caller's token that only the actor can check (it knows the stream's type). */
export interface StreamAccess {
  allowedStreamTypes?: string[];
}

export interface AppendTiming {
  /** Time spent waiting for the writer loop to take the request. */
  queueMs: number;
  /** Time spent in the database for the batch the request was part of. */
  databaseMs: number;
  totalMs: number;
}

export type ActorResult<T> = ({ ok: true } & T) | Failure;

export type AppendOutcome = ActorResult<{ result: AppendResult; timing: AppendTiming }>;

/**
 * An append's outcome as it crosses RPC back: a failure's details as JSON text, since
 * they can hold objects keyed by names the caller chose (a refused condition's state)
 * and workerd's RPC serializer refuses an object with an own "__proto__" key.
 */
export type AppendAnswer =
  | Exclude<AppendOutcome, Failure>
  | (Omit<Failure, "details"> & { detailsJson?: string });

export function packAppendOutcome(outcome: AppendOutcome): AppendAnswer {
  if (outcome.ok || outcome.details === undefined) return outcome;
  const { details, ...failure } = outcome;
  return { ...failure, detailsJson: JSON.stringify(details) };
}

export function unpackAppendAnswer(answer: AppendAnswer): AppendOutcome {
  if (answer.ok || !("detailsJson" in answer) || answer.detailsJson === undefined)
    return answer as AppendOutcome;
  const { detailsJson, ...failure } = answer;
  return { ...failure, details: JSON.parse(detailsJson) as Failure["details"] & object };
}

export interface ReadEventsQuery {
  fromVersion?: number;
  limit: number;
  direction: "forward" | "backward";
}

export interface ActorStats {
  /** Append requests taken by the writer loop. */
  requests: number;
  /** Batches written (each by one database statement, its own transaction). */
  transactions: number;
  /** Times the cached state was (re)loaded from the database. */
  loads: number;
  /** Database statements sent (each one round trip), for every purpose. */
  statements: number;
}

export interface StreamActorApi {
  append(call: AppendCall): Promise<AppendAnswer>;
  readEvents(
    streamId: string,
    query: ReadEventsQuery,
    access?: StreamAccess,
  ): Promise<
    ActorResult<{
      events: StoredEvent[];
      /** Whether events may follow this page (its `next` link): it was full, or cut short by its size. */
      more: boolean;
    }>
  >;
  head(streamId: string, access?: StreamAccess): Promise<ActorResult<{ stream: StreamHead }>>;
  state(
    streamId: string,
    atVersion?: number,
    access?: StreamAccess,
  ): Promise<ActorResult<{ state: WorkflowState }>>;
  stats(): Promise<ActorStats>;
  /** The leases of the watchers open now (see WatcherQuota). */
  watcherLeases(): Promise<string[]>;
  /** Only for WebSocket upgrades of watchers (see WATCH_HEADERS). */
  fetch(request: Request): Promise<Response>;
}
