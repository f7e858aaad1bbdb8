import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Failure, FailureCode } from "../events/failure";
import { problem } from "./problem";

const STATUS: Record<FailureCode, { status: ContentfulStatusCode; title: string }> = {
  concurrency_conflict: { status: 409, title: "Version conflict" },
  stream_not_found: { status: 404, title: "Stream not found" },
  version_not_found: { status: 404, title: "Version not found" },
  stream_type_mismatch: { status: 409, title: "Stream type mismatch" },
  idempotency_conflict: { status: 409, title: "Event id already used" },
  invalid_event_sequence: { status: 422, title: "Invalid event sequence" },
  invalid_append: { status: 400, title: "Invalid append" },
  unavailable: { status: 503, title: "Database unavailable" },
  forbidden: { status: 403, title: "Forbidden" },
  corrupt_data: { status: 500, title: "Stored data is corrupt" },
};

/** The problem response for a failure the actor returned. */
export function failureResponse(c: Context, failure: Failure): Response {
  const { status, title } = STATUS[failure.code];
  const headers: Record<string, string> = failure.code === "unavailable" ? { "retry-after": "1" } : {};
  return problem(c, status, failure.code, title, failure.message, failure.details ?? {}, headers);
}
