import {
  conditionConflict,
  earlierAppend,
  exactExpectedVersion,
  expectedVersionConflict,
  type IdentifiedEvent,
  streamTypeConflict,
} from "../events/append-rules";
import type { Failure } from "../events/failure";
import { DEFAULT_STREAM_TYPE, type StoredEventRef } from "../events/store";
import { IdempotencyConflict, RedeliveryMismatch, TurnHeld } from "../events/store-errors";
import { deliveryKey, earlierDelivery, type RecordedDelivery } from "../events/webhook-deliveries";
import { applyEvent } from "../state/apply-event";
import { InvalidEventSequence } from "../state/invalid-event-sequence";
import type { WorkflowState } from "../state/workflow-state";
import type { AppendCommand } from "./actor-protocol";
import { forbiddenType } from "./stream-access";

// The group commit's decision, apart from everything that waits: given the stream as
// the actor has it and the appends waiting in its queue, which of them are written (at
// which versions), which are repeats of appends already made, and which are refused,
// each against a draft of the stream that the requests accepted before it have moved.
// A refused request leaves the draft as it was and disturbs no other request.
//
// The appends of a batch were all waiting at once, so any order is a valid one; the
// order chosen (decisionOrder) lets an append whose exact expected version is the
// stream's go before anything moves the stream, and tells the other exact ones the
// version the batch ends at, so that a retry can succeed in the next batch.

/** The stream as the actor caches it, and as a batch drafts it. */
export interface StreamDraft {
  /** The state after the stream's last event; its version is the stream's. */
  state: WorkflowState;
  /** Undefined until the stream has its first event. */
  streamType: string | undefined;
}

/** One append of the batch, its event ids settled (identifyEvents). */
export interface BatchedAppend {
  command: AppendCommand;
  events: IdentifiedEvent[];
}

export type Verdict =
  /** Written by this batch, at these versions. */
  | { kind: "accepted"; versions: number[] }
  /**
   * Appended before, at these versions: nothing to write. When the original is in this
   * batch (a retry racing it), the answer waits for the batch's commit. `eventIds` are the
   * original's when they are not the request's own (a webhook redelivery's are new ones).
   */
  | { kind: "repeat"; versions: number[]; awaitsCommit: boolean; eventIds?: string[] }
  | { kind: "refused"; failure: Failure };

export interface BatchDecision<A extends BatchedAppend> {
  /** Every append of the batch with its verdict, in the order they were decided (decisionOrder). */
  decided: Array<{ append: A; verdict: Verdict }>;
  /** The accepted appends' events, in version order from the stream's version + 1. */
  events: IdentifiedEvent[];
  /** The stream once those events are written. */
  after: StreamDraft;
  /** The webhook deliveries of the accepted appends, recorded by the statement that writes their events. */
  deliveries: RecordedDelivery[];
}

/**
 * Decides a batch against the stream `before` it, knowing where the batch's event ids
 * are already stored (`stored`) and which of its webhook deliveries are recorded
 * (`delivered`, by deliveryKey). Pure: it writes nothing and answers no one.
 */
export function decideBatch<A extends BatchedAppend>(
  streamId: string,
  before: StreamDraft,
  batch: readonly A[],
  stored: ReadonlyMap<string, StoredEventRef>,
  delivered: ReadonlyMap<string, RecordedDelivery> = new Map(),
  mayTakeTurn: (append: A) => boolean = () => true,
): BatchDecision<A> {
  // The batch's own events (and deliveries) count as stored for the appends after them:
  // a retry racing its original is judged by the same rule as one arriving after the commit.
  const known = new Map(stored);
  const written = new Set<string>();
  const deliveries = {
    known: new Map(delivered),
    written: new Set<string>(),
    recorded: [] as RecordedDelivery[],
  };
  const decided: BatchDecision<A>["decided"] = [];
  const events: IdentifiedEvent[] = [];
  let draft = before;
  for (const append of decisionOrder(before.state.version, batch)) {
    const judged = judge(streamId, draft, append, known, written, deliveries, mayTakeTurn);
    if ("verdict" in judged) {
      decided.push({ append, verdict: judged.verdict });
      continue;
    }
    const versions = append.events.map((_, index) => draft.state.version + index + 1);
    for (const [index, item] of append.events.entries()) {
      known.set(item.event_id, {
        event_id: item.event_id,
        stream_id: streamId,
        version: versions[index] ?? 0,
      });
      written.add(item.event_id);
    }
    events.push(...append.events);
    const { delivery } = append.command;
    if (delivery !== undefined) {
      const eventIds = append.events.map((item) => item.event_id);
      const record: RecordedDelivery = { ...delivery, streamId, eventIds, versions };
      deliveries.known.set(deliveryKey(delivery), record);
      deliveries.written.add(deliveryKey(delivery));
      deliveries.recorded.push(record);
    }
    draft = {
      state: judged.state,
      streamType: draft.streamType ?? append.command.streamType ?? DEFAULT_STREAM_TYPE,
    };
    decided.push({ append, verdict: { kind: "accepted", versions } });
  }
  return { decided, events, after: draft, deliveries: deliveries.recorded };
}

/**
 * The order a batch is decided in: first the appends whose exact expected version (N or
 * no_stream) is the stream's version when the batch starts (the only ones that can be
 * accepted, and only before anything else moves the stream), then the appends that
 * expect no exact version (any, stream_exists), then the other exact ones, so that their
 * refusals carry the version the whole batch ends at; queue order within each group.
 * In queue order, an `any` append queued first would make the exact one behind it fail,
 * and a refused writer queued before the winner would learn a version already stale.
 * (Order within a batch does not make 64 writers retrying exact versions fair, since each
 * batch mostly holds one request; turns do: `mayTakeTurn`, src/actor/turns.ts, decision 23.)
 */
export function decisionOrder<A extends BatchedAppend>(version: number, batch: readonly A[]): A[] {
  const group = (append: A) => {
    const exact = exactExpectedVersion(append.command.expectedVersion);
    return exact === undefined ? 1 : exact === version ? 0 : 2;
  };
  const groups: [A[], A[], A[]] = [[], [], []];
  for (const append of batch) groups[group(append)].push(append);
  return groups.flat();
}

/** One append against the draft: its verdict when it writes nothing, or the state after its events. */
function judge<A extends BatchedAppend>(
  streamId: string,
  draft: StreamDraft,
  append: A,
  known: ReadonlyMap<string, StoredEventRef>,
  written: ReadonlySet<string>,
  deliveries: { known: ReadonlyMap<string, RecordedDelivery>; written: ReadonlySet<string> },
  mayTakeTurn: (append: A) => boolean,
): { verdict: Verdict } | { state: WorkflowState } {
  const { command } = append;
  const refuse = (failure: Failure) => ({ verdict: { kind: "refused", failure } as const });
  const forbidden = forbiddenType(
    command.allowedStreamTypes,
    draft.streamType ?? command.streamType ?? DEFAULT_STREAM_TYPE,
  );
  if (forbidden) return refuse(forbidden);
  if (command.delivery !== undefined) {
    // A webhook is idempotent on its delivery (source and webhook-id), not on its event ids.
    const key = deliveryKey(command.delivery);
    const first = earlierDelivery(streamId, command.delivery, deliveries.known.get(key));
    if (first instanceof RedeliveryMismatch) return refuse(first.toFailure());
    if (first !== undefined) {
      const awaitsCommit = deliveries.written.has(key);
      return {
        verdict: { kind: "repeat", versions: first.versions, eventIds: first.eventIds, awaitsCommit },
      };
    }
  }
  const ids = append.events.map((item) => item.event_id);
  const earlier = earlierAppend(streamId, ids, known);
  if (earlier instanceof IdempotencyConflict) return refuse(earlier.toFailure());
  if (earlier !== undefined) {
    return {
      verdict: { kind: "repeat", versions: earlier, awaitsCommit: ids.some((id) => written.has(id)) },
    };
  }
  const conflict =
    expectedVersionConflict(streamId, command.expectedVersion, draft.state.version) ??
    streamTypeConflict(streamId, command.streamType, draft.streamType) ??
    conditionConflict(streamId, command.condition, draft.state);
  if (conflict) return refuse(conflict.toFailure());
  let state = draft.state;
  for (const [index, item] of append.events.entries()) {
    try {
      state = applyEvent(state, item.event);
    } catch (error) {
      if (!(error instanceof InvalidEventSequence)) throw error;
      const failure = error.toFailure();
      return refuse({ ...failure, details: { ...failure.details, event_index: index } });
    }
  }
  // Last, so that an append that could not be written anyway says why (422, 412) rather than "wait".
  if (exactExpectedVersion(command.expectedVersion) !== undefined && !mayTakeTurn(append))
    return refuse(new TurnHeld(streamId, command.expectedVersion, draft.state.version).toFailure());
  return { state };
}
