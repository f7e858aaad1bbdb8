import { describe, expect, it } from "vitest";
import { conditionConflict } from "../../src/events/append-rules";
import { applyEvents } from "../../src/state/apply-event";
import {
  checkCondition,
  MAX_CONDITION_ENTRIES,
  StateCondition,
  sameJson,
} from "../../src/state/state-condition";
import { emptyWorkflowState, type WorkflowState } from "../../src/state/workflow-state";
import { contextUpdated, started, stepActivated, stepCompleted } from "../support/event-builders";

// The append condition (`if`): a partial picture of the workflow state, equality only.

const STREAM = "4a7d1ed4-1b53-4f5c-9b7e-2f0f4c8f3b10";

/** Running, "intake" completed, "review" active and current, two context keys. */
function atReview(): WorkflowState {
  return applyEvents(emptyWorkflowState(), [
    started(),
    stepActivated("intake"),
    stepCompleted("intake"),
    stepActivated("review"),
    contextUpdated("approved", false),
    contextUpdated("limits", { amount: 10, tags: ["a", "b"] }),
  ]);
}

const parse = (input: unknown) => StateCondition.parse(input);

describe("the condition's schema", () => {
  it("takes status, current_step, steps and context, and keeps step ids such as __proto__", () => {
    const condition = parse(
      JSON.parse('{"steps": {"__proto__": "active", "review": null}, "current_step": null}'),
    );
    expect(Object.keys(condition.steps ?? {})).toEqual(["__proto__", "review"]);
    expect(condition.current_step).toBeNull();
  });

  it.each([
    [{}, /name at least one of status, current_step, steps, context/],
    [{ steps: {}, context: {} }, /name at least one/],
    [{ step: "review", status: "active" }, /a condition names only status, current_step, steps, context/],
    [{ status: "active" }, /status/],
    [{ steps: { review: "done" } }, /steps/],
    [{ current_step: "" }, /current_step/],
    [{ context: { k: undefined } }, /context/],
    [
      {
        steps: Object.fromEntries(
          Array.from({ length: MAX_CONDITION_ENTRIES + 1 }, (_, i) => [`s${i}`, null]),
        ),
      },
      new RegExp(`at most ${MAX_CONDITION_ENTRIES} entries`),
    ],
  ])("refuses %j", (input, message) => {
    const parsed = StateCondition.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toMatch(message);
  });
});

describe("checking a condition against a state", () => {
  it.each([
    { status: "running" },
    { current_step: "review" },
    { steps: { review: "active", intake: "completed", later: null } },
    { context: { approved: false, limits: { tags: ["a", "b"], amount: 10 } } },
    { status: "running", current_step: "review", steps: { review: "active" }, context: { approved: false } },
  ])("holds for %j", (input) => {
    expect(checkCondition(parse(input), atReview())).toBeUndefined();
  });

  it("names every field that does not hold, with the state's values of every field named", () => {
    const mismatch = checkCondition(
      parse({
        status: "running",
        current_step: "intake",
        steps: { review: "completed", intake: "completed", "a/b~c": "active" },
        context: { approved: true, missing: null, limits: { amount: 10, tags: ["b", "a"] } },
      }),
      atReview(),
    );
    expect(mismatch?.unmet).toEqual([
      "/current_step",
      "/steps/review",
      "/steps/a~1b~0c",
      "/context/approved",
      "/context/missing",
      "/context/limits",
    ]);
    expect(mismatch?.state).toEqual({
      status: "running",
      current_step: "review",
      steps: { review: "active", intake: "completed", "a/b~c": null },
      context: { approved: false, limits: { amount: 10, tags: ["a", "b"] } },
    });
    expect(mismatch?.differences).toEqual([
      'current_step is "review", not "intake"',
      'steps["review"] is "active", not "completed"',
      'steps["a/b~c"] is null, not "active"',
      'context["approved"] is false, not true',
      'context["missing"] is not set, not null',
      'context["limits"] is {"amount":10,"tags":["a","b"]}, not {"amount":10,"tags":["b","a"]}',
    ]);
  });

  it("reads only the state's own keys: a step or context key named like an Object property is absent", () => {
    const mismatch = checkCondition(
      parse({ steps: { constructor: "active" }, context: { toString: null } }),
      atReview(),
    );
    expect(mismatch?.unmet).toEqual(["/steps/constructor", "/context/toString"]);
    expect(checkCondition(parse({ steps: { constructor: null } }), atReview())).toBeUndefined();
  });

  it("holds on a stream with no events when it asks for what an empty state is", () => {
    expect(
      checkCondition(
        parse({ status: "pending", current_step: null, steps: { a: null } }),
        emptyWorkflowState(),
      ),
    ).toBeUndefined();
  });
});

describe("the append rule", () => {
  it("is met without a condition, and refuses with condition_failed, the version and the state's values", () => {
    expect(conditionConflict(STREAM, undefined, atReview())).toBeUndefined();
    const failure = conditionConflict(STREAM, parse({ current_step: "intake" }), atReview())?.toFailure();
    expect(failure).toEqual({
      ok: false,
      code: "condition_failed",
      message: expect.stringMatching(
        new RegExp(
          `^Stream ${STREAM} at version 6 does not meet the append's condition: current_step is "review", not "intake"\\. Nothing was written`,
        ),
      ),
      details: {
        condition: { current_step: "intake" },
        state: { current_step: "review" },
        unmet: ["/current_step"],
        version: 6,
      },
    });
  });
});

describe("JSON equality", () => {
  it.each([
    [1, 1, true],
    [0, -0, true],
    [1, "1", false],
    [null, {}, false],
    [[], {}, false],
    [[1, [2]], [1, [2]], true],
    [[1, 2], [2, 1], false],
    [{ a: 1, b: [null] }, { b: [null], a: 1 }, true],
    [{ a: 1 }, { a: 1, b: 2 }, false],
    [{ a: undefined as unknown as null }, { b: null }, false],
  ])("%j and %j: %s", (a, b, same) => {
    expect(sameJson(a, b)).toBe(same);
    expect(sameJson(b, a)).toBe(same);
  });
});
