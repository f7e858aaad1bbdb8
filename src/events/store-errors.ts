import { CodedError, type Failure, unavailable } from "./failure";
import type { ExpectedVersion } from "./store";

/** Everything the event store can refuse or fail with; each case carries the code clients see. */
export abstract class EventStoreError extends CodedError {}

/** The stream was not at the version the caller expected. */
export class ConcurrencyConflict extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    /** The stream's version when the append was refused; 0 when it has no events. */
    readonly actual: number,
  ) {
    const advice =
      expected === "stream_exists" && actual === 0
        ? `Stream ${streamId} has no events but the append expected an existing stream; ` +
          'create it first, or append with expected version "no_stream" or "any" to create it.'
        : `Stream ${streamId} is at version ${actual} but the append expected ${describeExpected(expected)}; ` +
          "read the stream and retry with its current version.";
    super("concurrency_conflict", advice, { expected, actual });
  }
}

/**
 * The stream is at the version the append expected, but a writer refused earlier holds
 * the next turn (src/actor/turns.ts, ARCHITECTURE decision 23): a version conflict all
 * the same, retried with the same expected version and the turn the answer gives.
 */
export class TurnHeld extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(
      "concurrency_conflict",
      `Stream ${streamId} is at version ${actual}, as the append expected, but writers refused before it are ` +
        'served first; retry with the same expected version and the "turn" this answer gives.',
      { expected, actual },
    );
  }
}

export class StreamNotFound extends EventStoreError {
  constructor(readonly streamId: string) {
    super("stream_not_found", `Stream ${streamId} has no events.`);
  }
}

/** A version beyond the stream's head was asked for. */
export class VersionNotFound extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly requested: number,
    readonly head: number,
  ) {
    const message = `Stream ${streamId} has no version ${requested}: it is at version ${head}.`;
    super("version_not_found", message, { requested, version: head });
  }
}

/** The stream exists with another stream type than the append named. */
export class StreamTypeMismatch extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly expectedType: string,
    readonly actualType: string,
  ) {
    super(
      "stream_type_mismatch",
      `Stream ${streamId} has stream_type "${actualType}", not "${expectedType}"; ` +
        "omit stream_type or send the stream's own.",
      { stream_type: actualType },
    );
  }
}

/**
 * Some event ids of the append are already stored, but not as exactly this append
 * (other stream, other positions, or only some of them): a retry must resend the
 * same events with the same ids, and new events need new ids.
 */
export class IdempotencyConflict extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly eventIds: readonly string[],
  ) {
    super(
      "idempotency_conflict",
      `Event id ${eventIds.slice(0, 3).join(", ")}${eventIds.length > 3 ? ", …" : ""} is already stored ` +
        `but not as this append to stream ${streamId}; use new event ids for new events, or resend the original append unchanged.`,
      { event_ids: [...eventIds] },
    );
  }
}

/**
 * A webhook message (source and webhook-id) was delivered before with another body: its
 * events are not the first delivery's, so they are not written, and the sender is told.
 */
export class RedeliveryMismatch extends EventStoreError {
  constructor(
    readonly source: string,
    readonly webhookId: string,
  ) {
    super(
      "redelivery_mismatch",
      `Webhook ${JSON.stringify(webhookId)} from source ${source} was delivered before with a different body, ` +
        "so nothing was written. A redelivery must carry the first body unchanged; a new message needs a new webhook-id.",
    );
  }
}

/** The append itself is malformed (no events, duplicate ids, a value PostgreSQL cannot store). */
export class InvalidAppend extends EventStoreError {
  constructor(message: string) {
    super("invalid_append", message);
  }
}

/** A row read back does not match its schema: the database was written by something else. */
export class CorruptRow extends EventStoreError {
  constructor(message: string) {
    super("corrupt_data", message);
  }
}

/** The database failed or could not be reached; the outcome of a write in flight is unknown. */
export class DatabaseError extends EventStoreError {
  constructor(message: string, options: { cause: unknown }) {
    super("unavailable", message, undefined, options);
  }

  /** Worded for the caller: retry, with the same event ids. */
  override toFailure(): Failure {
    return unavailable();
  }
}

function describeExpected(expected: ExpectedVersion): string {
  if (expected === "any") return "any version";
  if (expected === "no_stream") return "no stream (version 0)";
  if (expected === "stream_exists") return "an existing stream";
  return `version ${expected}`;
}
