import type { ProblemResponse } from "../src/http/schemas";
import type { StateCondition } from "../src/state/state-condition";

// Typed errors of the glyph-streams client, one class per problem the API answers
// (application/problem+json, RFC 9457), so callers can `instanceof` instead of parsing.

export type Problem = ReturnType<typeof ProblemResponse.parse>;

/** Any error the API answered with a problem document, or the client could not get past. */
export class GlyphError extends Error {
  override name = "GlyphError";
  /** The HTTP status, or 0 when there was no answer (network, timeout). */
  readonly status: number;
  /** The problem's code: the tail of its type, urn:glyph-streams:problem:<code>. */
  readonly code: string;
  readonly problem: Problem | undefined;
  constructor(message: string, status: number, code: string, problem?: Problem, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.code = code;
    this.problem = problem;
  }
}

/** 409 concurrency_conflict: the stream is not at the expected version. */
export class ConflictError extends GlyphError {
  override name = "ConflictError";
  readonly expected: unknown;
  readonly actual: number | undefined;
  /** Send it back with the retry (AppendOptions.turn): writers refused earlier are served first. */
  readonly turn: string | undefined;
  constructor(problem: Problem) {
    super(problem.detail, problem.status, codeOf(problem), problem);
    this.expected = problem.expected;
    this.actual = typeof problem.actual === "number" ? problem.actual : undefined;
    this.turn = typeof problem.turn === "string" ? problem.turn : undefined;
  }
}

/** 409 other than a version conflict: stream type mismatch, an event id reused with other events... */
export class EventConflict extends GlyphError {
  override name = "EventConflict";
}

/** 422: the events break the workflow rules; the message is the reducer's sentence. */
export class RuleViolation extends GlyphError {
  override name = "RuleViolation";
}

/** 412: the append's `if` did not hold; nothing was written. */
export class ConditionFailed extends GlyphError {
  override name = "ConditionFailed";
  readonly condition: StateCondition | undefined;
  readonly state: unknown;
  readonly unmet: string[];
  readonly version: number | undefined;
  constructor(problem: Problem) {
    super(problem.detail, problem.status, codeOf(problem), problem);
    this.condition = problem.condition as StateCondition | undefined;
    this.state = problem.state;
    this.unmet = Array.isArray(problem.unmet) ? problem.unmet.map(String) : [];
    this.version = typeof problem.version === "number" ? problem.version : undefined;
  }
}

export class Unauthorized extends GlyphError {
  override name = "Unauthorized";
}
export class Forbidden extends GlyphError {
  override name = "Forbidden";
}
export class NotFound extends GlyphError {
  override name = "NotFound";
}
/** 400 (and 415): the request is malformed; the message names each field. */
export class InvalidRequest extends GlyphError {
  override name = "InvalidRequest";
}
/** 413: body, events per append or metadata too large. */
export class TooLarge extends GlyphError {
  override name = "TooLarge";
}
/** 503 (after the retries ran out), a network failure or a timeout. */
export class Unavailable extends GlyphError {
  override name = "Unavailable";
}
/** The server answered something the client's schemas do not accept. */
export class ProtocolError extends GlyphError {
  override name = "ProtocolError";
}

export function codeOf(problem: Problem): string {
  return problem.type.replace(/^urn:glyph-streams:problem:/, "");
}

/** The typed error for a problem document. */
export function errorFromProblem(problem: Problem): GlyphError {
  const code = codeOf(problem);
  const make = (Class: new (...args: ConstructorParameters<typeof GlyphError>) => GlyphError) =>
    new Class(problem.detail, problem.status, code, problem);
  switch (problem.status) {
    case 400:
    case 415:
      return make(InvalidRequest);
    case 401:
      return make(Unauthorized);
    case 403:
      return make(Forbidden);
    case 404:
      return make(NotFound);
    case 409:
      return code === "concurrency_conflict" ? new ConflictError(problem) : make(EventConflict);
    case 412:
      return new ConditionFailed(problem);
    case 413:
      return make(TooLarge);
    case 422:
      return make(RuleViolation);
    case 503:
      return make(Unavailable);
    default:
      return make(GlyphError);
  }
}
