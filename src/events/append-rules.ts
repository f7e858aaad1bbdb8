import type { ExpectedVersion } from "./store";
import { ConcurrencyConflict } from "./store-errors";

// The expected-version rule, in one place: the stream actor (against its cached
// version) and the store (against the head it read) both ask it.

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
