import { describe, expect, it } from "vitest";
import type { AppendCommand } from "../../src/actor/actor-protocol";
import {
  type BatchedAppend,
  decideBatch,
  type StreamDraft,
  type Verdict,
} from "../../src/actor/group-commit";
import { identifyEvents } from "../../src/events/append-rules";
import type { ExpectedVersion, StoredEventRef } from "../../src/events/store";
import { InvalidAppend } from "../../src/events/store-errors";
import type { WorkflowEvent } from "../../src/events/types";
import { applyEvents } from "../../src/state/apply-event";
import { StateCondition } from "../../src/state/state-condition";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import {
  contextUpdated,
  started,
  stepActivated,
  stepCompleted,
  workflowCompleted,
} from "../support/event-builders";

// The group commit's decision without workerd or a database: every request of a batch
// is judged against a draft that only the requests accepted before it have moved.

const STREAM = "4a7d1ed4-1b53-4f5c-9b7e-2f0f4c8f3b10";
const OTHER_STREAM = "9d3f4a5b-6c7d-4e8f-a091-b2c3d4e5f607";
const WORKFLOW = "8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c";

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

interface Options {
  expected?: ExpectedVersion;
  streamType?: string;
  allowed?: string[];
  /** Caller-chosen ids, one per event; generated when absent. */
  ids?: string[];
  /** The body's `if`. */
  condition?: unknown;
}

function append(events: WorkflowEvent[], options: Options = {}): BatchedAppend {
  const command: AppendCommand = {
    streamId: STREAM,
    expectedVersion: options.expected ?? "any",
    events: events.map((event, index) => ({
      event,
      ...(options.ids?.[index] === undefined ? {} : { event_id: options.ids[index] }),
    })),
    ...(options.streamType === undefined ? {} : { streamType: options.streamType }),
    ...(options.allowed === undefined ? {} : { allowedStreamTypes: options.allowed }),
    ...(options.condition === undefined ? {} : { condition: StateCondition.parse(options.condition) }),
  };
  const identified = identifyEvents(command.events);
  if (identified instanceof InvalidAppend) throw identified;
  return { command, events: identified.events };
}

const empty = (): StreamDraft => ({ state: emptyWorkflowState(), streamType: undefined });

/** A workflow stream of `type` with a started workflow and `updates` context updates. */
function running(updates = 1, type = "workflow"): StreamDraft {
  const events = [
    started(WORKFLOW),
    ...Array.from({ length: updates }, (_, i) => contextUpdated(`k${i}`, i)),
  ];
  return { state: applyEvents(emptyWorkflowState(), events), streamType: type };
}

const storedAt = (refs: Array<[string, number, string?]>): Map<string, StoredEventRef> =>
  new Map(
    refs.map(([eventId, version, streamId = STREAM]) => [
      eventId,
      { event_id: eventId, stream_id: streamId, version },
    ]),
  );

const verdicts = (decision: { decided: Array<{ verdict: Verdict }> }) =>
  decision.decided.map((d) => d.verdict);

function refusal(verdict: Verdict | undefined) {
  if (verdict?.kind !== "refused") throw new Error(`expected a refusal, got ${JSON.stringify(verdict)}`);
  return verdict.failure;
}

describe("accepted appends", () => {
  it("take the versions after one another, in queue order, and move the draft", () => {
    const batch = [
      append([started(WORKFLOW)], { expected: "no_stream" }),
      append([contextUpdated("a", 1)]),
      append([contextUpdated("b", 2), contextUpdated("c", 3)], { expected: 2 }),
    ];
    const decision = decideBatch(STREAM, empty(), batch, new Map());
    expect(verdicts(decision)).toEqual([
      { kind: "accepted", versions: [1] },
      { kind: "accepted", versions: [2] },
      { kind: "accepted", versions: [3, 4] },
    ]);
    expect(decision.decided.map((d) => d.append)).toEqual(batch);
    expect(decision.events).toEqual(batch.flatMap((item) => item.events));
    expect(decision.after).toEqual({
      state: applyEvents(emptyWorkflowState(), [
        started(WORKFLOW),
        contextUpdated("a", 1),
        contextUpdated("b", 2),
        contextUpdated("c", 3),
      ]),
      streamType: "workflow",
    });
  });

  it("give a new stream the type its first accepted append names", () => {
    const decision = decideBatch(
      STREAM,
      empty(),
      [append([started(WORKFLOW)], { streamType: "order" })],
      new Map(),
    );
    expect(decision.after.streamType).toBe("order");
  });

  it("leave the stream as it was when nothing is accepted, and write nothing", () => {
    const before = running(2);
    const decision = decideBatch(STREAM, before, [append([started(WORKFLOW)])], new Map());
    expect(decision.events).toEqual([]);
    expect(decision.after).toEqual(before);
  });

  it("change neither the stream they start from nor the ids they were given", () => {
    const before = running(1);
    const snapshot = structuredClone(before);
    const stored = storedAt([[id(1), 1]]);
    decideBatch(STREAM, before, [append([contextUpdated("x", 1)], { ids: [id(9)] })], stored);
    expect(before).toEqual(snapshot);
    expect([...stored.keys()]).toEqual([id(1)]);
  });
});

describe("a refused append", () => {
  it("leaves the draft as it was and the appends before and after it alone", () => {
    const batch = [
      append([contextUpdated("a", 1)], { expected: 2 }),
      append([contextUpdated("b", 1)], { expected: 2 }),
      append([contextUpdated("c", 1)], { expected: 3 }),
    ];
    const decision = decideBatch(STREAM, running(1), batch, new Map());
    const [first, second, third] = verdicts(decision);
    expect(first).toEqual({ kind: "accepted", versions: [3] });
    expect(refusal(second)).toMatchObject({
      code: "concurrency_conflict",
      details: { expected: 2, actual: 3 },
    });
    expect(third).toEqual({ kind: "accepted", versions: [4] });
    expect(decision.events).toEqual([...(batch[0]?.events ?? []), ...(batch[2]?.events ?? [])]);
    expect(decision.after.state.version).toBe(4);
    expect(Object.keys(decision.after.state.context)).toEqual(["k0", "a", "c"]);
  });

  it("frees its ids: they are new to the appends after it", () => {
    const batch = [
      append([started(WORKFLOW)], { expected: "stream_exists", ids: [id(7)] }),
      append([started(WORKFLOW)], { ids: [id(7)] }),
    ];
    const [first, second] = verdicts(decideBatch(STREAM, empty(), batch, new Map()));
    expect(refusal(first).code).toBe("concurrency_conflict");
    expect(second).toEqual({ kind: "accepted", versions: [1] });
  });
});

describe("expected versions", () => {
  it("are checked against the draft, not the stream the batch started from", () => {
    const batch = [
      append([started(WORKFLOW)], { expected: "no_stream" }),
      append([contextUpdated("a", 1)], { expected: "no_stream" }),
      append([contextUpdated("a", 1)], { expected: "stream_exists" }),
      append([contextUpdated("d", 1)], { expected: "any" }),
      append([contextUpdated("c", 1)], { expected: 3 }),
      append([contextUpdated("b", 1)], { expected: 1 }),
    ];
    const decision = decideBatch(STREAM, empty(), batch, new Map());
    expect(decision.decided.map((d) => d.append)).toEqual(batch);
    const decided = verdicts(decision);
    expect(decided[0]).toEqual({ kind: "accepted", versions: [1] });
    expect(refusal(decided[1])).toMatchObject({ details: { expected: "no_stream", actual: 1 } });
    expect(decided[2]).toEqual({ kind: "accepted", versions: [2] });
    expect(decided[3]).toEqual({ kind: "accepted", versions: [3] });
    expect(decided[4]).toEqual({ kind: "accepted", versions: [4] });
    expect(refusal(decided[5])).toMatchObject({ details: { expected: 1, actual: 4 } });
  });

  it("refuse an exact append whose turn has not come, though its version is the stream's, and let the next one win", () => {
    const waiting = append([contextUpdated("w", 1)], { expected: 2 });
    const first = append([contextUpdated("f", 1)], { expected: 2 });
    const rulesBreaker = append([started(WORKFLOW)], { expected: 2 });
    const loose = append([contextUpdated("l", 1)], { expected: "any" });
    const decision = decideBatch(
      STREAM,
      running(1),
      [waiting, rulesBreaker, first, loose],
      new Map(),
      new Map(),
      (candidate) => candidate === first,
    );
    const byAppend = new Map(decision.decided.map((d) => [d.append, d.verdict]));
    expect(refusal(byAppend.get(waiting))).toMatchObject({
      code: "concurrency_conflict",
      details: { expected: 2, actual: 2 },
    });
    // An append the rules refuse is told so, not told to wait its turn.
    expect(refusal(byAppend.get(rulesBreaker)).code).toBe("invalid_event_sequence");
    expect(byAppend.get(first)).toEqual({ kind: "accepted", versions: [3] });
    // Appends without an exact version take no turns.
    expect(byAppend.get(loose)).toEqual({ kind: "accepted", versions: [4] });
  });

  it("refuse stream_exists on a stream with no events, with actual 0", () => {
    const [verdict] = verdicts(
      decideBatch(STREAM, empty(), [append([started(WORKFLOW)], { expected: "stream_exists" })], new Map()),
    );
    expect(refusal(verdict)).toMatchObject({
      code: "concurrency_conflict",
      details: { expected: "stream_exists", actual: 0 },
    });
  });
});

describe("the order a batch is decided in", () => {
  const decidedOrder = <A>(decision: { decided: Array<{ append: A }> }) =>
    decision.decided.map((d) => d.append);

  it("puts the appends that expect the stream's version first, then those without an exact version, then the other exact ones", () => {
    const stale = append([contextUpdated("stale", 1)], { expected: 1 });
    const any = append([contextUpdated("any", 1)]);
    const winner = append([contextUpdated("winner", 1)], { expected: 2 });
    const loser = append([contextUpdated("loser", 1)], { expected: 2 });
    const exists = append([contextUpdated("exists", 1)], { expected: "stream_exists" });
    const decision = decideBatch(STREAM, running(1), [stale, any, winner, loser, exists], new Map());
    expect(decidedOrder(decision)).toEqual([winner, loser, any, exists, stale]);
    expect(verdicts(decision)).toMatchObject([
      { kind: "accepted", versions: [3] },
      { kind: "refused", failure: { details: { expected: 2, actual: 3 } } },
      { kind: "accepted", versions: [4] },
      { kind: "accepted", versions: [5] },
      // Refused writers learn the version the whole batch ends at: their retry can succeed next time.
      { kind: "refused", failure: { details: { expected: 1, actual: 5 } } },
    ]);
    expect(decision.events.map((item) => item.event)).toEqual([
      contextUpdated("winner", 1),
      contextUpdated("any", 1),
      contextUpdated("exists", 1),
    ]);
  });

  it("does not refuse an exact append because an append without an exact version was queued before it", () => {
    const any = append([contextUpdated("any", 1)]);
    const exact = append([contextUpdated("exact", 1)], { expected: 2 });
    const decision = decideBatch(STREAM, running(1), [any, exact], new Map());
    expect(decidedOrder(decision)).toEqual([exact, any]);
    expect(verdicts(decision)).toEqual([
      { kind: "accepted", versions: [3] },
      { kind: "accepted", versions: [4] },
    ]);
  });

  it("takes no_stream as the exact version 0", () => {
    const first = append([contextUpdated("x", 1)], { expected: "any" });
    const create = append([started(WORKFLOW)], { expected: "no_stream" });
    const [created, after] = verdicts(decideBatch(STREAM, empty(), [first, create], new Map()));
    expect(created).toEqual({ kind: "accepted", versions: [1] });
    expect(after).toEqual({ kind: "accepted", versions: [2] });
  });
});

describe("conditions on the state (if)", () => {
  /** Running, at step "review" (active): version 3. */
  const atReview = (): StreamDraft => ({
    state: applyEvents(emptyWorkflowState(), [
      started(WORKFLOW),
      contextUpdated("k", 0),
      stepActivated("review"),
    ]),
    streamType: "workflow",
  });
  const advance = (from: string, to: string) => [stepCompleted(from), stepActivated(to)];

  it("are checked against the draft: an earlier append of the batch that moves the workflow fails a later one", () => {
    const batch = [
      append(advance("review", "approve"), { condition: { current_step: "review" } }),
      append(advance("review", "approve"), { condition: { current_step: "review" } }),
      append([contextUpdated("note", 1)], {
        condition: { current_step: "approve", steps: { review: "completed" } },
      }),
    ];
    const decision = decideBatch(STREAM, atReview(), batch, new Map());
    const [first, second, third] = verdicts(decision);
    expect(first).toEqual({ kind: "accepted", versions: [4, 5] });
    expect(refusal(second)).toEqual({
      ok: false,
      code: "condition_failed",
      message: expect.stringMatching(/at version 5 .*current_step is "approve", not "review"/),
      details: {
        condition: { current_step: "review" },
        state: { current_step: "approve" },
        unmet: ["/current_step"],
        version: 5,
      },
    });
    expect(third).toEqual({ kind: "accepted", versions: [6] });
    expect(decision.events).toEqual([...(batch[0]?.events ?? []), ...(batch[2]?.events ?? [])]);
    expect(decision.after.state.current_step).toBe("approve");
  });

  it("let exactly one of many writers advance a step, without exact versions", () => {
    const writers = Array.from({ length: 64 }, () =>
      append(advance("review", "approve"), { condition: { steps: { review: "active" } } }),
    );
    const decided = verdicts(decideBatch(STREAM, atReview(), writers, new Map()));
    expect(decided.filter((verdict) => verdict.kind === "accepted")).toHaveLength(1);
    expect(decided.slice(1).map((verdict) => refusal(verdict).details?.state)).toEqual(
      Array.from({ length: 63 }, () => ({ steps: { review: "completed" } })),
    );
  });

  it("combine with the expected version: both must hold, the version is checked first", () => {
    const wrong = { current_step: "approve" };
    const batch = [
      append([contextUpdated("a", 1)], { expected: 3, condition: wrong }),
      append([contextUpdated("b", 1)], { expected: 9, condition: wrong }),
      append([contextUpdated("c", 1)], { expected: 3, condition: { current_step: "review" } }),
    ];
    // Decided in the order first, third, second: the exact version 9 is not the stream's (decisionOrder).
    const [first, third, second] = verdicts(decideBatch(STREAM, atReview(), batch, new Map()));
    expect(refusal(first)).toMatchObject({ code: "condition_failed", details: { version: 3 } });
    expect(third).toEqual({ kind: "accepted", versions: [4] });
    expect(refusal(second)).toMatchObject({
      code: "concurrency_conflict",
      details: { expected: 9, actual: 4 },
    });
  });

  it("do not stop a repeat: a retry of an append its own events have moved past its condition is answered as one", () => {
    const retry = append(advance("review", "approve"), {
      condition: { current_step: "review" },
      ids: [id(1), id(2)],
    });
    const moved: StreamDraft = {
      state: applyEvents(atReview().state, advance("review", "approve")),
      streamType: "workflow",
    };
    const [verdict] = verdicts(
      decideBatch(
        STREAM,
        moved,
        [retry],
        storedAt([
          [id(1), 4],
          [id(2), 5],
        ]),
      ),
    );
    expect(verdict).toEqual({ kind: "repeat", versions: [4, 5], awaitsCommit: false });
  });

  it("are checked before the workflow rules", () => {
    const [verdict] = verdicts(
      decideBatch(
        STREAM,
        atReview(),
        [append([started(WORKFLOW)], { condition: { status: "pending" } })],
        new Map(),
      ),
    );
    expect(refusal(verdict)).toMatchObject({
      code: "condition_failed",
      details: { state: { status: "running" } },
    });
  });
});

describe("the workflow rules", () => {
  it("refuse an append whose event breaks them, naming the event's index, and keep none of its events", () => {
    const batch = [
      append([contextUpdated("ok", 1), stepCompleted("never-activated")]),
      append([contextUpdated("next", 1)]),
    ];
    const decision = decideBatch(STREAM, running(1), batch, new Map());
    const [first, second] = verdicts(decision);
    expect(refusal(first)).toMatchObject({
      code: "invalid_event_sequence",
      details: {
        event_index: 1,
        event_type: "step_completed",
        step_id: "never-activated",
        status: "running",
        version: 3,
      },
    });
    expect(refusal(first).message).toMatch(/never-activated/);
    expect(second).toEqual({ kind: "accepted", versions: [3] });
    expect(Object.keys(decision.after.state.context)).toEqual(["k0", "next"]);
  });

  it("apply to the draft: an event valid only after an earlier append of the batch is accepted", () => {
    const batch = [append([workflowCompleted()]), append([contextUpdated("late", 1)])];
    const [first, second] = verdicts(decideBatch(STREAM, running(1), batch, new Map()));
    expect(first).toEqual({ kind: "accepted", versions: [3] });
    expect(refusal(second)).toMatchObject({
      code: "invalid_event_sequence",
      details: { status: "completed" },
    });
  });
});

describe("stream types", () => {
  it("refuse an append naming another type than the stream's", () => {
    const batch = [
      append([contextUpdated("a", 1)], { streamType: "order" }),
      append([contextUpdated("b", 1)]),
    ];
    const [first, second] = verdicts(decideBatch(STREAM, running(1), batch, new Map()));
    expect(refusal(first)).toMatchObject({
      code: "stream_type_mismatch",
      details: { stream_type: "workflow" },
    });
    expect(second).toEqual({ kind: "accepted", versions: [3] });
  });

  it("hold the type a batch gives a new stream against the appends after it", () => {
    const batch = [
      append([started(WORKFLOW)], { streamType: "order" }),
      append([contextUpdated("a", 1)], { streamType: "invoice" }),
      append([contextUpdated("b", 1)], { streamType: "order" }),
    ];
    const decided = verdicts(decideBatch(STREAM, empty(), batch, new Map()));
    expect(refusal(decided[1])).toMatchObject({
      code: "stream_type_mismatch",
      details: { stream_type: "order" },
    });
    expect(decided[2]).toEqual({ kind: "accepted", versions: [2] });
  });
});

describe("a token limited to stream types", () => {
  it("is refused on a stream of another type, and on a new stream that would get another type", () => {
    const onOrder = append([contextUpdated("a", 1)], { allowed: ["order"] });
    expect(refusal(verdicts(decideBatch(STREAM, running(1), [onOrder], new Map()))[0])).toMatchObject({
      code: "forbidden",
      message: expect.stringMatching(/only streams of type order, and this stream is not one of them/),
    });
    const [defaulted, named] = verdicts(
      decideBatch(
        STREAM,
        empty(),
        [
          append([started(WORKFLOW)], { allowed: ["order"] }),
          append([started(WORKFLOW)], { allowed: ["order"], streamType: "order" }),
        ],
        new Map(),
      ),
    );
    expect(refusal(defaulted).code).toBe("forbidden");
    expect(named).toEqual({ kind: "accepted", versions: [1] });
  });

  it("is refused before a repeat is recognised, so it learns nothing of the stream", () => {
    const repeat = append([started(WORKFLOW)], { allowed: ["order"], ids: [id(1)] });
    const [verdict] = verdicts(decideBatch(STREAM, running(0), [repeat], storedAt([[id(1), 1]])));
    expect(refusal(verdict).code).toBe("forbidden");
  });
});

describe("repeats of appends already stored", () => {
  const stored = storedAt([
    [id(1), 1],
    [id(2), 2],
    [id(5), 1, OTHER_STREAM],
  ]);

  it("are answered with the original versions, before the expected version is checked, and write nothing", () => {
    const repeat = append([started(WORKFLOW), contextUpdated("k0", 0)], {
      expected: "no_stream",
      ids: [id(1), id(2)],
    });
    const decision = decideBatch(STREAM, running(1), [repeat], stored);
    expect(verdicts(decision)).toEqual([{ kind: "repeat", versions: [1, 2], awaitsCommit: false }]);
    expect(decision.events).toEqual([]);
  });

  it("conflict when the ids come in another order, only in part, or from another stream", () => {
    const batch = [
      append([contextUpdated("a", 1), contextUpdated("b", 1)], { ids: [id(2), id(1)] }),
      append([contextUpdated("a", 1), contextUpdated("b", 1)], { ids: [id(1), id(3)] }),
      append([contextUpdated("a", 1)], { ids: [id(5)] }),
    ];
    const decided = verdicts(decideBatch(STREAM, running(1), batch, stored));
    expect(decided.map((verdict) => refusal(verdict))).toMatchObject([
      { code: "idempotency_conflict", details: { event_ids: [id(2), id(1)] } },
      { code: "idempotency_conflict", details: { event_ids: [id(1)] } },
      { code: "idempotency_conflict", details: { event_ids: [id(5)] } },
    ]);
  });
});

describe("repeats within one batch (a retry racing its original)", () => {
  it("wait for the original's commit, answered with its versions; the events are written once", () => {
    const original = append([contextUpdated("a", 1), contextUpdated("b", 2)], { ids: [id(7), id(8)] });
    const retry = append([contextUpdated("a", 1), contextUpdated("b", 2)], {
      ids: [id(7), id(8)],
      expected: 2,
    });
    const decision = decideBatch(STREAM, running(1), [original, retry], new Map());
    expect(verdicts(decision)).toEqual([
      { kind: "accepted", versions: [3, 4] },
      { kind: "repeat", versions: [3, 4], awaitsCommit: true },
    ]);
    expect(decision.events).toEqual(original.events);
    expect(decision.after.state.version).toBe(4);
  });

  it("follow the same rule as stored ones: a run of the original's ids repeats, any other overlap conflicts", () => {
    const batch = [
      append([contextUpdated("a", 1), contextUpdated("b", 2)], { ids: [id(7), id(8)] }),
      append([contextUpdated("b", 2)], { ids: [id(8)] }),
      append([contextUpdated("a", 1), contextUpdated("c", 3)], { ids: [id(7), id(9)] }),
      append([contextUpdated("b", 2), contextUpdated("a", 1)], { ids: [id(8), id(7)] }),
    ];
    const decided = verdicts(decideBatch(STREAM, running(1), batch, new Map()));
    expect(decided[1]).toEqual({ kind: "repeat", versions: [4], awaitsCommit: true });
    expect(refusal(decided[2])).toMatchObject({
      code: "idempotency_conflict",
      details: { event_ids: [id(7)] },
    });
    expect(refusal(decided[3])).toMatchObject({ details: { event_ids: [id(8), id(7)] } });
  });

  it("wait for the commit when their ids span events stored before and events of this batch", () => {
    const batch = [
      append([contextUpdated("b", 2)], { ids: [id(2)] }),
      append([started(WORKFLOW), contextUpdated("b", 2)], { ids: [id(1), id(2)] }),
    ];
    const decided = verdicts(decideBatch(STREAM, running(0), batch, storedAt([[id(1), 1]])));
    expect(decided).toEqual([
      { kind: "accepted", versions: [2] },
      { kind: "repeat", versions: [1, 2], awaitsCommit: true },
    ]);
  });
});
