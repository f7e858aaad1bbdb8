import { log } from "../log";
import type { JsonValue } from "./wire";

// A failure as a value: what an error becomes where it must cross a boundary (Durable
// Object RPC loses an error's class and fields) or be answered (a problem document).

/** Every way a request can fail, as clients see it: the problem type is urn:glyph-streams:problem:<code>. */
export type FailureCode =
  | "concurrency_conflict"
  | "stream_not_found"
  | "version_not_found"
  | "stream_type_mismatch"
  | "idempotency_conflict"
  | "redelivery_mismatch"
  | "invalid_event_sequence"
  | "condition_failed"
  | "invalid_append"
  | "unavailable"
  | "forbidden"
  | "corrupt_data";

export interface Failure {
  ok: false;
  code: FailureCode;
  /** A sentence a person can act on. */
  message: string;
  /** Extra members for the problem document (e.g. expected and actual versions). */
  details?: Record<string, JsonValue>;
}

/** An error that knows the failure it is answered with: its code, its sentence and its details. */
export abstract class CodedError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    /** What a client needs beside the sentence: the problem document's extra members. */
    readonly details: Record<string, JsonValue> | undefined = undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
    // The class's own name ("VersionNotFound"): the bundler keeps class names (wrangler's keep_names).
    this.name = new.target.name;
  }

  toFailure(): Failure {
    const { code, message, details } = this;
    return { ok: false, code, message, ...(details === undefined ? {} : { details }) };
  }
}

/** The failure for anything thrown: its own when it is a CodedError; otherwise the database is taken to have failed. */
export function toFailure(error: unknown): Failure {
  return error instanceof CodedError ? error.toFailure() : unavailable();
}

/**
 * What a client is told when the database failed or did not answer in time: one fixed
 * sentence. What the driver or the server said (a role, a host, a constraint, a query)
 * is for the operator, in the log line of logServiceFault, and never crosses to a client.
 */
export const UNAVAILABLE_MESSAGE =
  "The database is unavailable; retry the request, with the same event ids for an append.";

/**
 * The database failed or did not answer in time: the caller may retry (with the same
 * event ids). The cause is not part of the answer (see UNAVAILABLE_MESSAGE): log it.
 */
export function unavailable(): Failure {
  return { ok: false, code: "unavailable", message: UNAVAILABLE_MESSAGE };
}

/** Failures that are the service's fault rather than the request's (answered 5xx): an operator must hear of each. */
export function isServiceFault(failure: Failure): boolean {
  return failure.code === "unavailable" || failure.code === "corrupt_data";
}

/**
 * Logs a failure that is the service's fault (one JSON line: where it happened, its code
 * and the cause, which the client's problem document does not carry), and returns it.
 */
export function logServiceFault(
  failure: Failure,
  cause: unknown,
  where: { stream_id?: string; operation: string; requests?: number },
): Failure {
  if (isServiceFault(failure)) {
    log({
      event: "request_failed",
      level: "error",
      ...where,
      code: failure.code,
      error: cause instanceof Error ? cause.name : typeof cause,
      cause: describeError(cause),
    });
  }
  return failure;
}

/** A readable reason for anything thrown. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
