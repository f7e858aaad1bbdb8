import { ConditionFailed, checkCondition, type StateCondition } from "../state/state-condition";
import type { WorkflowState } from "../state/workflow-state";
import { findUnstorableText } from "./storable-text";
import type { AppendRequest, AppendResult, ExpectedVersion, NewEvent, StoredEventRef } from "./store";
import { ConcurrencyConflict, IdempotencyConflict, InvalidAppend, StreamTypeMismatch } from "./store-errors";
import { Uuid } from "./wire";

// The rules every append meets, in one place, whoever writes it: the stream actor
// (against its cached stream and the ids it looked up) and the store (against the head
// it read, for callers that do not come through the actor).

/** The one version an expected version pins the stream to (`no_stream` is 0); undefined for `any` and `stream_exists`. */
export function exactExpectedVersion(expected: ExpectedVersion): number | undefined {
  if (expected === "no_stream") return 0;
  return typeof expected === "number" ? expected : undefined;
}

/**
 * Why a stream at version `actual` (0 when it has no events) refuses an append that
 * expected `expected`, or undefined when the append may go ahead. Every refusal is a
 * ConcurrencyConflict carrying both versions, `stream_exists` on an empty stream too.
 */
export function expectedVersionConflict(
  streamId: string,
  expected: ExpectedVersion,
  actual: number,
): ConcurrencyConflict | undefined {
  if (expected === "any") return undefined;
  const met = expected === "stream_exists" ? actual > 0 : exactExpectedVersion(expected) === actual;
  return met ? undefined : new ConcurrencyConflict(streamId, expected, actual);
}

/**
 * Why a stream of type `actual` (undefined while it has no events) refuses an append
 * that names `requested` (undefined: whatever the stream's type is), if it does.
 */
export function streamTypeConflict(
  streamId: string,
  requested: string | undefined,
  actual: string | undefined,
): StreamTypeMismatch | undefined {
  if (requested === undefined || actual === undefined || requested === actual) return undefined;
  return new StreamTypeMismatch(streamId, requested, actual);
}

/**
 * Why the state an append meets refuses the append's condition (its `if`), if it does:
 * ConditionFailed with the state's values of the fields the condition names.
 */
export function conditionConflict(
  streamId: string,
  condition: StateCondition | undefined,
  state: WorkflowState,
): ConditionFailed | undefined {
  if (condition === undefined) return undefined;
  const mismatch = checkCondition(condition, state);
  return mismatch && new ConditionFailed(streamId, condition, mismatch, state.version);
}

/** An event whose id is settled: the caller's, or one made for it. */
export type IdentifiedEvent = NewEvent & { event_id: string };

export interface IdentifiedEvents {
  events: IdentifiedEvent[];
  /** The ids the caller chose; only an append with such ids can be a repeat. */
  callerIds: string[];
}

/**
 * Gives every event an id (its own, or a new one) and refuses an append without events
 * or with two events sharing an id. Each event must already be well formed (its id a
 * normalised UUID, its text storable): the edge's schema checked that, or checkEvents.
 */
export function identifyEvents(events: readonly NewEvent[]): IdentifiedEvents | InvalidAppend {
  if (events.length === 0) return new InvalidAppend("An append needs at least one event.");
  const callerIds: string[] = [];
  const identified = events.map((item): IdentifiedEvent => {
    if (item.event_id === undefined) return { ...item, event_id: crypto.randomUUID() };
    callerIds.push(item.event_id);
    return { ...item, event_id: item.event_id };
  });
  if (new Set(identified.map((item) => item.event_id)).size !== identified.length) {
    return new InvalidAppend("Two events of one append share an event_id; every event needs its own.");
  }
  return { events: identified, callerIds };
}

/**
 * The events with their given ids normalised, or why one cannot be stored: an id that
 * is not a UUID, or text PostgreSQL cannot hold (which would fail the whole statement).
 */
export function checkEvents(events: readonly NewEvent[]): NewEvent[] | InvalidAppend {
  const checked: NewEvent[] = [];
  for (const [index, item] of events.entries()) {
    const id = item.event_id === undefined ? undefined : Uuid.safeParse(item.event_id);
    if (id?.success === false) return new InvalidAppend(`events.${index}.event_id is not a UUID.`);
    const unstorable = findUnstorableText(item, [index]);
    if (unstorable) return new InvalidAppend(`events.${unstorable.path.join(".")} ${unstorable.message}.`);
    checked.push(id === undefined ? item : { ...item, event_id: id.data });
  }
  return checked;
}

/**
 * An append as the store takes it from any caller: the stream id and the expected
 * version must be ones the store can hold, and the events must pass checkEvents and
 * identifyEvents. Throws InvalidAppend.
 */
export function prepareAppend(request: AppendRequest): IdentifiedEvents {
  if (!Uuid.safeParse(request.streamId).success) {
    throw new InvalidAppend(`Stream id ${JSON.stringify(request.streamId)} is not a UUID.`);
  }
  if (request.streamId !== request.streamId.toLowerCase()) {
    throw new InvalidAppend("Stream ids are lower-case UUIDs; normalise the id before appending.");
  }
  const exact = exactExpectedVersion(request.expectedVersion);
  if (exact !== undefined && (!Number.isSafeInteger(exact) || exact < 0)) {
    throw new InvalidAppend(`Expected version ${exact} is not a version: use a whole number from 0.`);
  }
  const checked = checkEvents(request.events);
  if (checked instanceof InvalidAppend) throw checked;
  const identified = identifyEvents(checked);
  if (identified instanceof InvalidAppend) throw identified;
  return identified;
}

/**
 * Whether an append with these event ids was made before, judged against the ids
 * known to be stored (`known`): undefined when none of them is; the versions they
 * hold when all of them are, in this stream, at consecutive versions in request order
 * (the append is a repeat: answer it with those versions and write nothing);
 * otherwise IdempotencyConflict, naming the ids already used.
 */
export function earlierAppend(
  streamId: string,
  eventIds: readonly string[],
  known: ReadonlyMap<string, StoredEventRef>,
): number[] | IdempotencyConflict | undefined {
  const refs = eventIds.map((id) => known.get(id));
  const used = eventIds.filter((_, index) => refs[index] !== undefined);
  if (used.length === 0) return undefined;
  const first = refs[0];
  const versions: number[] = [];
  for (const [index, ref] of refs.entries()) {
    if (!ref || !first || ref.stream_id !== streamId || ref.version !== first.version + index) {
      return new IdempotencyConflict(streamId, used);
    }
    versions.push(ref.version);
  }
  return versions;
}

/** The answer to a repeated append: the original's versions, nothing written. */
export function repeatedAppend(
  streamId: string,
  streamType: string,
  eventIds: string[],
  versions: number[],
): AppendResult {
  return {
    streamId,
    streamType,
    version: versions[versions.length - 1] ?? 0,
    versions,
    eventIds,
    idempotent: true,
    snapshotVersion: null,
  };
}
