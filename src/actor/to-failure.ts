import { ReplayError, ReplayInvalidSequence, ReplayStoreError } from "../events/replay";
import {
  ConcurrencyConflict,
  CorruptRow,
  EventStoreError,
  IdempotencyConflict,
  InvalidAppend,
  StreamNotFound,
  StreamTypeMismatch,
  VersionNotFound,
} from "../events/store-errors";
import { InvalidEventSequence } from "../state/invalid-event-sequence";
import type { ActorFailure } from "./actor-protocol";

/** Turns anything the store, the rebuilder or the reducer threw into a failure the Worker can answer with. */
export function toFailure(error: unknown): ActorFailure {
  if (error instanceof ReplayStoreError) return toFailure(error.cause);
  if (error instanceof ReplayInvalidSequence) {
    return {
      ok: false,
      code: "corrupt_data",
      message: `${error.message} The stream cannot be served until its log is repaired.`,
      details: { version: error.version },
    };
  }
  if (error instanceof ReplayError) return { ok: false, code: "corrupt_data", message: error.message };
  if (error instanceof InvalidEventSequence) {
    return {
      ok: false,
      code: "invalid_event_sequence",
      message: error.message,
      details: {
        event_type: error.eventType,
        step_id: error.stepId,
        status: error.status,
        version: error.atVersion,
      },
    };
  }
  if (error instanceof ConcurrencyConflict) {
    return {
      ok: false,
      code: "concurrency_conflict",
      message: error.message,
      details: { expected: error.expected, actual: error.actual },
    };
  }
  if (error instanceof StreamNotFound) return { ok: false, code: "stream_not_found", message: error.message };
  if (error instanceof VersionNotFound) {
    return {
      ok: false,
      code: "version_not_found",
      message: error.message,
      details: { requested: error.requested, version: error.head },
    };
  }
  if (error instanceof StreamTypeMismatch) {
    return {
      ok: false,
      code: "stream_type_mismatch",
      message: error.message,
      details: { stream_type: error.actualType },
    };
  }
  if (error instanceof IdempotencyConflict) {
    return {
      ok: false,
      code: "idempotency_conflict",
      message: error.message,
      details: { event_ids: [...error.eventIds] },
    };
  }
  if (error instanceof InvalidAppend) return { ok: false, code: "invalid_append", message: error.message };
  if (error instanceof CorruptRow) return { ok: false, code: "corrupt_data", message: error.message };
  if (error instanceof EventStoreError && !error.retryable) {
    return { ok: false, code: "invalid_append", message: error.message };
  }
  return unavailable(error);
}

/** The database failed or did not answer in time: the caller may retry (with the same event ids). */
export function unavailable(error: unknown): ActorFailure {
  const detail = error instanceof Error ? error.message : String(error);
  return {
    ok: false,
    code: "unavailable",
    message: `The database is unavailable (${detail}); retry the request, with the same event ids for an append.`,
  };
}
