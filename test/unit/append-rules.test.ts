import { describe, expect, it } from "vitest";
import { exactExpectedVersion, expectedVersionConflict } from "../../src/events/append-rules";
import type { ExpectedVersion } from "../../src/events/store";
import { ConcurrencyConflict } from "../../src/events/store-errors";

const STREAM = "4a7d1ed4-1b53-4f5c-9b7e-2f0f4c8f3b10";

describe("the expected-version rule", () => {
  const cases: Array<[ExpectedVersion, number, boolean]> = [
    ["any", 0, true],
    ["any", 7, true],
    ["no_stream", 0, true],
    ["no_stream", 1, false],
    ["stream_exists", 1, true],
    ["stream_exists", 40, true],
    ["stream_exists", 0, false],
    [0, 0, true],
    [3, 3, true],
    [3, 2, false],
    [3, 4, false],
    [1, 0, false],
  ];
  for (const [expected, actual, accepted] of cases) {
    it(`${JSON.stringify(expected)} against a stream at ${actual}: ${accepted ? "accepted" : "conflict"}`, () => {
      const conflict = expectedVersionConflict(STREAM, expected, actual);
      if (accepted) {
        expect(conflict).toBeUndefined();
        return;
      }
      expect(conflict).toBeInstanceOf(ConcurrencyConflict);
      expect(conflict).toMatchObject({ code: "concurrency_conflict", streamId: STREAM, expected, actual });
    });
  }

  it("says how to create the stream when stream_exists meets one with no events", () => {
    expect(expectedVersionConflict(STREAM, "stream_exists", 0)?.message).toBe(
      `Stream ${STREAM} has no events but the append expected an existing stream; ` +
        'create it first, or append with expected version "no_stream" or "any" to create it.',
    );
  });

  it("pins no_stream to 0 and numbers to themselves, nothing else", () => {
    expect(exactExpectedVersion("no_stream")).toBe(0);
    expect(exactExpectedVersion(5)).toBe(5);
    expect(exactExpectedVersion("any")).toBeUndefined();
    expect(exactExpectedVersion("stream_exists")).toBeUndefined();
  });
});
