import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Failure, FailureCode } from "../events/failure";
import { describeIssues, type JsonValue } from "../events/wire";
import { ProblemResponse } from "./schemas";

// Every error the API answers is an RFC 9457 problem document (application/problem+json)
// whose `detail` says what was wrong and how to fix it: built here, and documented here
// for /openapi.json.

/** An RFC 9457 problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: JsonValue;
}

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface ProblemOptions {
  status: ContentfulStatusCode;
  /** Stable and snake_case: the type is urn:glyph-streams:problem:<code>. */
  code: string;
  title: string;
  /** What was wrong and how to fix it, in a sentence a person can act on. */
  detail: string;
  /** Extension members (such as expected and actual versions); they cannot override the standard ones. */
  extras?: Record<string, JsonValue>;
  headers?: Record<string, string>;
}

/** A problem response; the request path is its `instance`. */
export function problem(c: Context, options: ProblemOptions): Response {
  const { status, code, title, detail, extras = {}, headers = {} } = options;
  const body: Problem = {
    instance: new URL(c.req.url).pathname,
    ...extras,
    type: `urn:glyph-streams:problem:${code}`,
    title,
    status,
    detail,
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": PROBLEM_CONTENT_TYPE, ...headers },
  });
}

const FAILURE_STATUS: Record<FailureCode, { status: ContentfulStatusCode; title: string }> = {
  concurrency_conflict: { status: 409, title: "Version conflict" },
  stream_not_found: { status: 404, title: "Stream not found" },
  version_not_found: { status: 404, title: "Version not found" },
  stream_type_mismatch: { status: 409, title: "Stream type mismatch" },
  idempotency_conflict: { status: 409, title: "Event id already used" },
  redelivery_mismatch: { status: 409, title: "Redelivery differs" },
  invalid_event_sequence: { status: 422, title: "Invalid event sequence" },
  condition_failed: { status: 412, title: "Condition not met" },
  invalid_append: { status: 400, title: "Invalid append" },
  unavailable: { status: 503, title: "Database unavailable" },
  forbidden: { status: 403, title: "Forbidden" },
  corrupt_data: { status: 500, title: "Stored data is corrupt" },
};

/** The problem response for a failure the actor (or the store) returned. */
export function failureResponse(c: Context, failure: Failure): Response {
  const { status, title } = FAILURE_STATUS[failure.code];
  return problem(c, {
    status,
    code: failure.code,
    title,
    detail: failure.message,
    ...(failure.details === undefined ? {} : { extras: failure.details }),
    ...(failure.code === "unavailable" ? { headers: { "retry-after": "1" } } : {}),
  });
}

const WHERE: Record<string, string> = {
  json: "The request body",
  query: "The query string",
  param: "The URL",
  header: "A header",
};

/** A 400 (or 413 for size limits) naming every field that failed and why. */
export function validationProblem(c: Context, error: z.ZodError, target: string): Response {
  const tooLarge = error.issues.some(
    (issue) =>
      (issue.code === "custom" && (issue.params as { status?: number } | undefined)?.status === 413) ||
      (issue.code === "too_big" && issue.path.length === 1 && issue.path[0] === "events"),
  );
  const where = WHERE[target] ?? "The request";
  const detail = `${where} is invalid: ${describeIssues(error)}.`;
  const errors = error.issues.slice(0, 20).map((issue) => ({
    pointer: `/${issue.path.map(String).join("/")}`,
    detail: issue.message,
  }));
  return tooLarge
    ? problem(c, { status: 413, code: "too_large", title: "Request too large", detail, extras: { errors } })
    : problem(c, {
        status: 400,
        code: "invalid_request",
        title: "Invalid request",
        detail,
        extras: { errors },
      });
}

const DESCRIPTIONS: Record<number, string> = {
  400: "The request is malformed; the detail names each field",
  401: "Missing or invalid credentials",
  403: "Not allowed",
  404: "Not found",
  408: "The body did not arrive within BODY_TIMEOUT_MS",
  409: "Conflict: version, stream type, event id, or a webhook redelivered with another body",
  412: "The append's condition (`if`) does not hold in the stream's state; `state` holds the values it names",
  413: "Too large: body, events per append or metadata",
  415: "Not JSON",
  422: "The events break the workflow rules",
  429: "Over the token's (or webhook source's) request rate; Retry-After says when to retry",
  500: "Stored data is corrupt",
  503: "The database is unavailable; retry",
};

/** OpenAPI entries for problem responses with these statuses. */
export function problemResponses(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: DESCRIPTIONS[status] ?? "Problem",
        content: { "application/problem+json": { schema: ProblemResponse } },
      },
    ]),
  );
}
