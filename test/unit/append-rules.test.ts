import { describe, expect, it } from "vitest";
import {
  checkEvents,
  earlierAppend,
  exactExpectedVersion,
  expectedVersionConflict,
  identifyEvents,
  prepareAppend,
  repeatedAppend,
  streamTypeConflict,
} from "../../src/events/append-rules";
import type { ExpectedVersion, StoredEventRef } from "../../src/events/store";
import { ConcurrencyConflict, IdempotencyConflict, InvalidAppend } from "../../src/events/store-errors";
import { contextUpdated, started } from "../support/event-builders";

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

describe("the stream-type rule", () => {
  it("refuses only a named type that differs from the stream's", () => {
    expect(streamTypeConflict(STREAM, undefined, "order")).toBeUndefined();
    expect(streamTypeConflict(STREAM, "order", undefined)).toBeUndefined();
    expect(streamTypeConflict(STREAM, "order", "order")).toBeUndefined();
    expect(streamTypeConflict(STREAM, "order", "workflow")).toMatchObject({
      code: "stream_type_mismatch",
      expectedType: "order",
      actualType: "workflow",
    });
  });
});

describe("event ids", () => {
  const A = "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4";

  it("keeps the caller's ids, makes the missing ones, and knows which the caller chose", () => {
    const identified = identifyEvents([{ event: started(), event_id: A }, { event: contextUpdated("k", 1) }]);
    if (identified instanceof InvalidAppend) throw identified;
    expect(identified.callerIds).toEqual([A]);
    expect(identified.events[0]?.event_id).toBe(A);
    expect(identified.events[1]?.event_id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(identified.events[1]?.event).toEqual(contextUpdated("k", 1));
  });

  it("refuses an append without events, or with two events sharing an id", () => {
    expect(identifyEvents([])).toMatchObject({
      code: "invalid_append",
      message: "An append needs at least one event.",
    });
    expect(
      identifyEvents([
        { event: started(), event_id: A },
        { event: contextUpdated("k", 1), event_id: A },
      ]),
    ).toMatchObject({
      code: "invalid_append",
      message: "Two events of one append share an event_id; every event needs its own.",
    });
  });

  it("normalises given ids to lower case before they are compared", () => {
    const checked = checkEvents([
      { event: started(), event_id: A.toUpperCase() },
      { event: contextUpdated("k", 1) },
    ]);
    if (checked instanceof InvalidAppend) throw checked;
    expect(checked.map((item) => item.event_id)).toEqual([A, undefined]);
    const twice = checkEvents([
      { event: started(), event_id: A },
      { event: contextUpdated("k", 1), event_id: A.toUpperCase() },
    ]);
    if (twice instanceof InvalidAppend) throw twice;
    expect(identifyEvents(twice)).toBeInstanceOf(InvalidAppend);
  });

  it("refuses an id that is not a UUID, naming the event", () => {
    expect(
      checkEvents([{ event: started() }, { event: contextUpdated("k", 1), event_id: "nope" }]),
    ).toMatchObject({
      code: "invalid_append",
      message: "events.1.event_id is not a UUID.",
    });
  });

  it("refuses text PostgreSQL cannot hold, naming where it is", () => {
    expect(checkEvents([{ event: started() }, { event: contextUpdated("k", "a\u0000b") }])).toMatchObject({
      code: "invalid_append",
      message: "events.1.event.value contains the character U+0000, which PostgreSQL cannot store.",
    });
    expect(checkEvents([{ event: started(), metadata: { "\ud800": 1 } }])).toMatchObject({
      message: expect.stringMatching(/^events\.0\.metadata\.\ud800 its key contains an unpaired surrogate/),
    });
  });
});

describe("an append as the store takes it", () => {
  const wrapOne = { expectedVersion: "any" as const, events: [{ event: started() }] };

  it("wants a lower-case UUID stream id and a whole-number expected version", () => {
    expect(() => prepareAppend({ ...wrapOne, streamId: "not-a-uuid" })).toThrow(/is not a UUID/);
    expect(() => prepareAppend({ ...wrapOne, streamId: STREAM.toUpperCase() })).toThrow(/lower-case/);
    for (const expectedVersion of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => prepareAppend({ ...wrapOne, streamId: STREAM, expectedVersion })).toThrow(InvalidAppend);
    }
    expect(prepareAppend({ ...wrapOne, streamId: STREAM }).events).toHaveLength(1);
  });

  it("checks the events and then their ids", () => {
    expect(() =>
      prepareAppend({ ...wrapOne, streamId: STREAM, events: [{ event: contextUpdated("k", "\udc00") }] }),
    ).toThrow(/unpaired surrogate/);
    expect(() => prepareAppend({ ...wrapOne, streamId: STREAM, events: [] })).toThrow(/at least one event/);
  });
});

describe("repeat detection", () => {
  const OTHER = "9d3f4a5b-6c7d-4e8f-a091-b2c3d4e5f607";
  const ref = (event_id: string, version: number, stream_id = STREAM): [string, StoredEventRef] => [
    event_id,
    { event_id, stream_id, version },
  ];
  const known = new Map([ref("a", 4), ref("b", 5), ref("c", 6), ref("x", 1, OTHER)]);

  it("finds nothing when none of the ids is known", () => {
    expect(earlierAppend(STREAM, ["n", "m"], known)).toBeUndefined();
    expect(earlierAppend(STREAM, ["n"], new Map())).toBeUndefined();
  });

  it("answers with the stored versions when every id is known in this stream, consecutive and in order", () => {
    expect(earlierAppend(STREAM, ["a", "b", "c"], known)).toEqual([4, 5, 6]);
    expect(earlierAppend(STREAM, ["b", "c"], known)).toEqual([5, 6]);
  });

  it("calls any other use of known ids a conflict, naming the ids already used", () => {
    const conflicts: Array<[string[], string[]]> = [
      [
        ["b", "a"],
        ["b", "a"],
      ],
      [
        ["a", "c"],
        ["a", "c"],
      ],
      [["a", "n"], ["a"]],
      [["n", "a"], ["a"]],
      [["x"], ["x"]],
    ];
    for (const [ids, used] of conflicts) {
      const verdict = earlierAppend(STREAM, ids, known);
      expect(verdict, ids.join(",")).toBeInstanceOf(IdempotencyConflict);
      expect(verdict).toMatchObject({ code: "idempotency_conflict", streamId: STREAM, eventIds: used });
    }
  });

  it("answers a repeat as the original append, nothing written", () => {
    expect(repeatedAppend(STREAM, "order", ["a", "b"], [4, 5])).toEqual({
      streamId: STREAM,
      streamType: "order",
      version: 5,
      versions: [4, 5],
      eventIds: ["a", "b"],
      idempotent: true,
      snapshotVersion: null,
    });
  });
});
