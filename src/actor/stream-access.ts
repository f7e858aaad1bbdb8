import type { Failure } from "../events/failure";

/**
 * Refuses a stream whose type is outside the types the caller's token (or webhook
 * source) allows (undefined: no limit). A stream without events has no type yet, so
 * nothing is refused then; the actor is the one place that knows a stream's type
 * without another query. The refusal says nothing about the stream (not its type, not
 * its version): what is out of the caller's scope stays out of it (issue 10, row 9).
 */
export function forbiddenType(
  allowed: readonly string[] | undefined,
  streamType: string | undefined,
): Failure | undefined {
  if (allowed === undefined || streamType === undefined || allowed.includes(streamType)) return undefined;
  return {
    ok: false,
    code: "forbidden",
    message: `These credentials reach only streams of type ${allowed.join(", ")}, and this stream is not one of them.`,
  };
}
