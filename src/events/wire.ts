import { z } from "zod";

// Wire primitives shared by every schema that crosses a boundary. They accept what
// the seed's serde types (uuid, chrono) accept and emit what those types emit.

const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A hyphenated UUID of any version, normalised to lower case as the uuid crate prints it. */
export const Uuid = z
  .string({ error: "expected a UUID string" })
  .regex(UUID_PATTERN, { error: "expected a hyphenated UUID such as 8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c" })
  .transform((value) => value.toLowerCase());

const RFC3339_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Normalises an RFC 3339 timestamp to UTC with a `Z` suffix, keeping every fractional
 * digit (chrono writes up to nanoseconds, which a JS Date would round away).
 * Returns undefined for anything that is not a real instant.
 */
export function toUtcTimestamp(text: string): string | undefined {
  const match = RFC3339_PATTERN.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction = "", offset = "Z"] = match;
  const fields = [year, month, day, hour, minute, second].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [y, mo, d, h, mi, s] = fields;
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  // Not Date.UTC: it reads years 0-99 as 1900-1999, which would turn 0050 into 1950.
  const wallClock = new Date(0);
  wallClock.setUTCFullYear(y, mo - 1, d);
  wallClock.setUTCHours(h, mi, s, 0);
  if (
    wallClock.getUTCFullYear() !== y ||
    wallClock.getUTCMonth() !== mo - 1 ||
    wallClock.getUTCDate() !== d
  ) {
    return undefined;
  }
  const millis = wallClock.getTime();
  let offsetMinutes = 0;
  if (offset !== "Z" && offset !== "z") {
    const sign = offset.startsWith("-") ? -1 : 1;
    const hours = Number(offset.slice(1, 3));
    const minutes = Number(offset.slice(4, 6));
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = sign * (hours * 60 + minutes);
  }
  const utc = new Date(millis - offsetMinutes * 60_000);
  if (Number.isNaN(utc.getTime())) return undefined;
  // An offset can move the instant out of 0000-9999, which has no RFC 3339 spelling
  // (toISOString would write "-000001-..." or "+010000-..."): refuse it rather than mangle it.
  const utcYear = utc.getUTCFullYear();
  if (utcYear < 0 || utcYear > 9999) return undefined;
  return `${utc.toISOString().slice(0, 19)}${fraction}Z`;
}

/** An RFC 3339 timestamp (chrono's `DateTime<Utc>`), emitted in UTC. */
export const Timestamp = z
  .string({ error: "expected an RFC 3339 timestamp string" })
  .transform((value, ctx) => {
    const normalised = toUtcTimestamp(value);
    if (normalised === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `expected an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, got ${JSON.stringify(value.slice(0, 64))}`,
      });
      return z.NEVER;
    }
    return normalised;
  });

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Deeper values are refused: nothing legitimate nests this far, and recursion must stay bounded. */
export const MAX_JSON_DEPTH = 64;

function jsonProblem(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return undefined;
  if (typeof value === "number") return Number.isFinite(value) ? undefined : "expected a finite number";
  if (typeof value !== "object") return `expected a JSON value, got ${typeof value}`;
  if (depth >= MAX_JSON_DEPTH) return `JSON nested deeper than ${MAX_JSON_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = jsonProblem(item, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return "expected a plain JSON object";
  for (const key of Object.keys(value)) {
    const problem = jsonProblem((value as Record<string, unknown>)[key], depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Any JSON value (serde_json::Value). Checked in place rather than rebuilt, so the
 * value passes through unchanged: a rebuilt copy would drop keys such as "__proto__".
 */
export const ANY_JSON_META = {
  description: "Any JSON value",
  type: ["object", "array", "string", "number", "boolean", "null"],
};

export const JsonValue = z
  .unknown()
  .superRefine((value, ctx) => {
    const problem =
      value === undefined ? "expected a JSON value (this field is required)" : jsonProblem(value, 0);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta(ANY_JSON_META) as unknown as z.ZodType<JsonValue>;

/** A non-empty string: ids and names that an empty string would make meaningless. */
export const Name = z.string({ error: "expected a string" }).min(1, { error: "must not be empty" });

/** Formats a zod error as one sentence per problem, each naming the field path. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length === 0 ? "(root)" : issue.path.map(String).join(".");
      return `${path}: ${issue.message}`;
    })
    .join("; ");
}
