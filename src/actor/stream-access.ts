import type { Failure } from "../events/failure";

/**
 * Refuses a stream whose type is outside the types the caller's token allows (undefined:
 * no limit). A stream without events has no type yet, so nothing is refused then; the
 * actor is the one place that knows a stream's type without another query.
 */
export function forbiddenType(
  allowed: readonly string[] | undefined,
  streamType: string | undefined,
): Failure | undefined {
  if (allowed === undefined || streamType === undefined || allowed.includes(streamType)) return undefined;
  return {
    ok: false,
    code: "forbidden",
    message: `This token may only access streams of type ${allowed.join(", ")}; this stream is of type ${streamType}.`,
  };
}
