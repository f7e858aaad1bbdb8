import { describe, expect, it } from "vitest";
import type { EventOf, WorkflowEvent, WorkflowEventType } from "../../src/events/types";
import type { JsonValue } from "../../src/events/wire";
import { applyEvent, applyEvents } from "../../src/state/apply-event";
import { InvalidEventSequence } from "../../src/state/invalid-event-sequence";
import {
  emptyWorkflowState,
  type StepState,
  type WorkflowState,
  WorkflowState as WorkflowStateSchema,
  type WorkflowStatus,
} from "../../src/state/workflow-state";

// ---------------------------------------------------------------------------------
// Fixed ids, timestamps and event builders

const WORKFLOW_ID = "0b7e6f3a-4c1d-4e8a-9f2b-1a2b3c4d5e6f";
const AGENT_A = "11111111-2222-4333-8444-555555555555";
const AGENT_B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

/** A fixed, already-normalised timestamp: 2026-01-31T12:00:00Z plus `seconds`. */
function at(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  return `2026-01-31T12:${String(minutes).padStart(2, "0")}:${String(rest).padStart(2, "0")}Z`;
}

const ev = {
  started: (t = 0): EventOf<"workflow_started"> => ({
    type: "workflow_started",
    workflow_id: WORKFLOW_ID,
    config_version: "v3",
    started_at: at(t),
  }),
  activated: (step_id: string, t = 1, assigned_to: string[] = [AGENT_A]): EventOf<"step_activated"> => ({
    type: "step_activated",
    step_id,
    assigned_to,
    activated_at: at(t),
  }),
  completed: (step_id: string, result: JsonValue = { ok: true }, t = 2): EventOf<"step_completed"> => ({
    type: "step_completed",
    step_id,
    result,
    completed_at: at(t),
  }),
  failed: (step_id: string, error = "agent timed out", retries = 1, t = 2): EventOf<"step_failed"> => ({
    type: "step_failed",
    step_id,
    error,
    retries,
    failed_at: at(t),
  }),
  skipped: (step_id: string, reason = "not needed", t = 3): EventOf<"step_skipped"> => ({
    type: "step_skipped",
    step_id,
    reason,
    skipped_at: at(t),
  }),
  transition: (
    from_step: string,
    to_step: string,
    condition_met: string | null = "approved",
    t = 4,
  ): EventOf<"transition_occurred"> => ({
    type: "transition_occurred",
    from_step,
    to_step,
    condition_met,
    occurred_at: at(t),
  }),
  consensus: (step_id: string, agreement = 0.75, t = 5): EventOf<"consensus_calculated"> => ({
    type: "consensus_calculated",
    step_id,
    agreement,
    metric: "majority",
    resolved_by: "vote",
    calculated_at: at(t),
  }),
  context: (key: string, value: JsonValue, t = 6): EventOf<"context_updated"> => ({
    type: "context_updated",
    key,
    value,
    updated_at: at(t),
  }),
  workflowCompleted: (
    final_output: JsonValue = { summary: "done" },
    t = 7,
  ): EventOf<"workflow_completed"> => ({
    type: "workflow_completed",
    final_output,
    completed_at: at(t),
  }),
  workflowFailed: (recoverable: boolean, error = "provider outage", t = 8): EventOf<"workflow_failed"> => ({
    type: "workflow_failed",
    error,
    recoverable,
    failed_at: at(t),
  }),
};

/** One event of every type, for "everything is refused" checks; steps refer to "review". */
function oneOfEach(): WorkflowEvent[] {
  return [
    ev.started(),
    ev.activated("review"),
    ev.completed("review"),
    ev.failed("review"),
    ev.skipped("review"),
    ev.transition("review", "publish"),
    ev.consensus("review"),
    ev.context("k", 1),
    ev.workflowCompleted(),
    ev.workflowFailed(true),
  ];
}

// ---------------------------------------------------------------------------------
// Helpers

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) {
      deepFreeze((value as Record<PropertyKey, unknown>)[key]);
    }
  }
  return value;
}

/** The state after applying `events` to an empty stream, deep-frozen. */
function stateAfter(...events: WorkflowEvent[]): WorkflowState {
  return deepFreeze(applyEvents(emptyWorkflowState(), events));
}

/** Applies one event to a frozen state with a frozen event, checking the input was not changed. */
function apply(state: WorkflowState, event: WorkflowEvent): WorkflowState {
  deepFreeze(state);
  deepFreeze(event);
  const before = JSON.stringify(state);
  const next = applyEvent(state, event);
  expect(JSON.stringify(state)).toBe(before);
  expect(next).not.toBe(state);
  expect(next.version).toBe(state.version + 1);
  return next;
}

type Refusal = {
  eventType: WorkflowEventType;
  stepId: string | null;
  status: WorkflowStatus;
  atVersion: number;
  message?: string;
  /** Fragments the message must contain, besides the event type and the status. */
  mentions?: string[];
};

/** Asserts that the rules refuse `event` in `state`, and how; returns the error. */
function expectRefused(state: WorkflowState, event: WorkflowEvent, refusal: Refusal): InvalidEventSequence {
  deepFreeze(state);
  deepFreeze(event);
  const before = JSON.stringify(state);
  let caught: unknown;
  try {
    applyEvent(state, event);
  } catch (error) {
    caught = error;
  }
  expect(JSON.stringify(state)).toBe(before);
  expect(caught).toBeInstanceOf(InvalidEventSequence);
  const error = caught as InvalidEventSequence;
  expect(error.name).toBe("InvalidEventSequence");
  expect({
    eventType: error.eventType,
    stepId: error.stepId,
    status: error.status,
    atVersion: error.atVersion,
  }).toEqual({
    eventType: refusal.eventType,
    stepId: refusal.stepId,
    status: refusal.status,
    atVersion: refusal.atVersion,
  });
  if (refusal.message !== undefined) expect(error.message).toBe(refusal.message);
  // One sentence that names the event, the step and the state it met.
  expect(error.message.startsWith(`${refusal.eventType} `)).toBe(true);
  expect(error.message.endsWith(".")).toBe(true);
  expect(error.message.slice(0, -1)).not.toContain(". ");
  expect(error.message).toContain(refusal.status);
  if (refusal.stepId !== null) expect(error.message).toContain(`step ${JSON.stringify(refusal.stepId)}`);
  for (const fragment of refusal.mentions ?? []) expect(error.message).toContain(fragment);
  return error;
}

function stepIn(state: WorkflowState, stepId: string): StepState {
  expect(Object.hasOwn(state.steps, stepId)).toBe(true);
  const step = state.steps[stepId];
  if (step === undefined) throw new Error(`step ${stepId} missing`);
  return step;
}

const running = (): WorkflowState => stateAfter(ev.started());
const withActive = (step = "review"): WorkflowState => stateAfter(ev.started(), ev.activated(step));

// ---------------------------------------------------------------------------------

describe("workflow_started", () => {
  it("starts an empty stream", () => {
    const next = apply(emptyWorkflowState(), ev.started());
    expect(next).toEqual({
      ...emptyWorkflowState(),
      version: 1,
      status: "running",
      workflow_id: WORKFLOW_ID,
      config_version: "v3",
      started_at: "2026-01-31T12:00:00Z",
    });
  });

  it("is refused once the stream has an event", () => {
    expectRefused(running(), ev.started(), {
      eventType: "workflow_started",
      stepId: null,
      status: "running",
      atVersion: 1,
      message: "workflow_started refused: the stream already has 1 event (workflow is running).",
    });
  });

  it("is refused on a completed stream, counting its events", () => {
    const state = stateAfter(ev.started(), ev.context("a", 1), ev.workflowCompleted());
    expectRefused(state, ev.started(), {
      eventType: "workflow_started",
      stepId: null,
      status: "completed",
      atVersion: 3,
      message: "workflow_started refused: the stream already has 3 events (workflow is completed).",
    });
  });

  it("is refused on a version-0 state that is not pending", () => {
    const odd: WorkflowState = { ...emptyWorkflowState(), status: "running" };
    expectRefused(odd, ev.started(), {
      eventType: "workflow_started",
      stepId: null,
      status: "running",
      atVersion: 0,
      message: "workflow_started refused: the workflow is not pending (workflow is running).",
    });
  });
});

describe("step_activated", () => {
  it("activates a new step while running", () => {
    const next = apply(running(), ev.activated("review", 10, [AGENT_A, AGENT_B]));
    expect(next.version).toBe(2);
    expect(next.current_step).toBe("review");
    expect(next.status).toBe("running");
    expect(next.steps).toEqual({
      review: {
        status: "active",
        assigned_to: [AGENT_A, AGENT_B],
        result: null,
        error: null,
        retries: 0,
        reason: null,
        activated_at: "2026-01-31T12:00:10Z",
        completed_at: null,
        failed_at: null,
        skipped_at: null,
      },
    });
  });

  it("reactivates a failed step, keeping its retries and clearing the error", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.failed("review", "boom", 2, 5));
    const next = apply(state, ev.activated("review", 20, [AGENT_B]));
    expect(stepIn(next, "review")).toEqual({
      status: "active",
      assigned_to: [AGENT_B],
      result: null,
      error: null,
      retries: 2,
      reason: null,
      activated_at: "2026-01-31T12:00:20Z",
      completed_at: null,
      failed_at: null,
      skipped_at: null,
    });
  });

  it("reactivates a completed step, clearing its result", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.completed("review", "v1"));
    const next = apply(state, ev.activated("review", 30));
    const step = stepIn(next, "review");
    expect(step.status).toBe("active");
    expect(step.result).toBeNull();
    expect(step.completed_at).toBeNull();
    expect(step.activated_at).toBe("2026-01-31T12:00:30Z");
  });

  it("reactivates a skipped step, clearing its reason", () => {
    const state = stateAfter(ev.started(), ev.skipped("review", "later"));
    const next = apply(state, ev.activated("review", 31));
    const step = stepIn(next, "review");
    expect(step.status).toBe("active");
    expect(step.reason).toBeNull();
    expect(step.skipped_at).toBeNull();
    expect(next.current_step).toBe("review");
  });

  it("moves current_step to the activated step and keeps the other steps", () => {
    const state = stateAfter(ev.started(), ev.activated("draft"), ev.completed("draft"));
    const next = apply(state, ev.activated("review"));
    expect(next.current_step).toBe("review");
    expect(stepIn(next, "draft").status).toBe("completed");
    expect(Object.keys(next.steps)).toEqual(["draft", "review"]);
  });

  it("is refused when the step is already active", () => {
    expectRefused(withActive(), ev.activated("review"), {
      eventType: "step_activated",
      stepId: "review",
      status: "running",
      atVersion: 2,
      message:
        'step_activated for step "review" refused: the step is already active; workflow is running at version 2.',
    });
  });

  it("is refused before the workflow started", () => {
    expectRefused(emptyWorkflowState(), ev.activated("review"), {
      eventType: "step_activated",
      stepId: "review",
      status: "pending",
      atVersion: 0,
      message:
        'step_activated for step "review" refused: steps can only be activated while the workflow is running or after a recoverable failure; workflow is pending at version 0.',
    });
  });

  it("is refused after the workflow completed", () => {
    expectRefused(stateAfter(ev.started(), ev.workflowCompleted()), ev.activated("review"), {
      eventType: "step_activated",
      stepId: "review",
      status: "completed",
      atVersion: 2,
    });
  });

  it("is refused after an unrecoverable failure", () => {
    expectRefused(stateAfter(ev.started(), ev.workflowFailed(false)), ev.activated("review"), {
      eventType: "step_activated",
      stepId: "review",
      status: "failed",
      atVersion: 2,
      mentions: ["failed (unrecoverable)"],
    });
  });

  it("resumes a recoverably failed workflow", () => {
    const state = stateAfter(
      ev.started(),
      ev.activated("review"),
      ev.failed("review", "timeout", 1),
      ev.workflowFailed(true, "provider outage", 9),
    );
    expect(state.status).toBe("failed");
    expect(state.error).toEqual({ message: "provider outage", recoverable: true, failed_at: at(9) });
    const next = apply(state, ev.activated("review", 40));
    expect(next.status).toBe("running");
    expect(next.error).toBeNull();
    expect(next.failed_at).toBeNull();
    expect(next.version).toBe(5);
    expect(next.current_step).toBe("review");
    expect(stepIn(next, "review").retries).toBe(1);
    // Back to running: the ordinary rules apply again.
    const done = apply(apply(next, ev.completed("review", "ok")), ev.workflowCompleted("out"));
    expect(done.status).toBe("completed");
    expect(done.final_output).toBe("out");
  });
});

describe("step_completed", () => {
  it("completes an active step", () => {
    const state = withActive();
    const next = apply(state, ev.completed("review", { score: 9 }, 12));
    expect(stepIn(next, "review")).toEqual({
      ...stepIn(state, "review"),
      status: "completed",
      result: { score: 9 },
      completed_at: "2026-01-31T12:00:12Z",
    });
    expect(next.status).toBe("running");
    expect(next.current_step).toBe("review");
  });

  it("accepts a JSON null result", () => {
    const next = apply(withActive(), ev.completed("review", null));
    expect(stepIn(next, "review").status).toBe("completed");
    expect(stepIn(next, "review").result).toBeNull();
  });

  it("is refused for a step that is already completed (names step and state)", () => {
    const state = stateAfter(
      ev.started(),
      ev.context("a", 1),
      ev.context("b", 2),
      ev.activated("draft"),
      ev.completed("draft"),
      ev.activated("review"),
      ev.completed("review"),
    );
    expectRefused(state, ev.completed("review"), {
      eventType: "step_completed",
      stepId: "review",
      status: "running",
      atVersion: 7,
      message:
        'step_completed for step "review" refused: the step is not active (it is completed); workflow is running at version 7.',
    });
  });

  it("is refused for an unknown step", () => {
    expectRefused(running(), ev.completed("review"), {
      eventType: "step_completed",
      stepId: "review",
      status: "running",
      atVersion: 1,
      message:
        'step_completed for step "review" refused: the step is not active (it was never activated); workflow is running at version 1.',
    });
  });

  it("is refused for a failed step and a skipped step", () => {
    const failed = stateAfter(ev.started(), ev.activated("review"), ev.failed("review"));
    expectRefused(failed, ev.completed("review"), {
      eventType: "step_completed",
      stepId: "review",
      status: "running",
      atVersion: 3,
      mentions: ["(it is failed)"],
    });
    const skipped = stateAfter(ev.started(), ev.skipped("review"));
    expectRefused(skipped, ev.completed("review"), {
      eventType: "step_completed",
      stepId: "review",
      status: "running",
      atVersion: 2,
      mentions: ["(it is skipped)"],
    });
  });

  it("is accepted for a step left active by a recoverable failure", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.workflowFailed(true));
    const next = apply(state, ev.completed("review", "late result"));
    expect(stepIn(next, "review").status).toBe("completed");
    expect(next.status).toBe("failed");
    expect(next.error?.recoverable).toBe(true);
  });

  it("is refused for a step left active when the workflow completed (terminal)", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.workflowCompleted());
    expectRefused(state, ev.completed("review"), {
      eventType: "step_completed",
      stepId: "review",
      status: "completed",
      atVersion: 3,
      message:
        'step_completed for step "review" refused: the workflow has ended, so it accepts no more events; workflow is completed at version 3.',
    });
  });
});

describe("step_failed", () => {
  it("fails an active step, recording error and retries", () => {
    const next = apply(withActive(), ev.failed("review", "model refused", 3, 14));
    expect(stepIn(next, "review")).toEqual({
      status: "failed",
      assigned_to: [AGENT_A],
      result: null,
      error: "model refused",
      retries: 3,
      reason: null,
      activated_at: at(1),
      completed_at: null,
      failed_at: "2026-01-31T12:00:14Z",
      skipped_at: null,
    });
    expect(next.status).toBe("running");
  });

  it("is refused for a step that is not active", () => {
    expectRefused(
      stateAfter(ev.started(), ev.activated("review"), ev.failed("review")),
      ev.failed("review"),
      {
        eventType: "step_failed",
        stepId: "review",
        status: "running",
        atVersion: 3,
        message:
          'step_failed for step "review" refused: the step is not active (it is failed); workflow is running at version 3.',
      },
    );
    expectRefused(running(), ev.failed("ghost"), {
      eventType: "step_failed",
      stepId: "ghost",
      status: "running",
      atVersion: 1,
      mentions: ["never activated"],
    });
  });

  it("is refused after an unrecoverable failure even for an active step", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.workflowFailed(false));
    expectRefused(state, ev.failed("review"), {
      eventType: "step_failed",
      stepId: "review",
      status: "failed",
      atVersion: 3,
      mentions: ["has ended", "failed (unrecoverable)"],
    });
  });
});

describe("step_skipped", () => {
  it("skips an unknown step, creating it", () => {
    const next = apply(running(), ev.skipped("optional", "not configured", 15));
    expect(stepIn(next, "optional")).toEqual({
      status: "skipped",
      assigned_to: [],
      result: null,
      error: null,
      retries: 0,
      reason: "not configured",
      activated_at: null,
      completed_at: null,
      failed_at: null,
      skipped_at: "2026-01-31T12:00:15Z",
    });
    expect(next.current_step).toBeNull();
  });

  it("skips a failed step, replacing the failure but keeping retries and assignment", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.failed("review", "boom", 4, 2));
    const next = apply(state, ev.skipped("review", "gave up", 16));
    expect(stepIn(next, "review")).toEqual({
      status: "skipped",
      assigned_to: [AGENT_A],
      result: null,
      error: null,
      retries: 4,
      reason: "gave up",
      activated_at: at(1),
      completed_at: null,
      failed_at: null,
      skipped_at: at(16),
    });
  });

  it("skips an already skipped step again, with the new reason", () => {
    const next = apply(stateAfter(ev.started(), ev.skipped("s", "first")), ev.skipped("s", "second", 17));
    expect(stepIn(next, "s").reason).toBe("second");
    expect(stepIn(next, "s").skipped_at).toBe(at(17));
  });

  it("is refused for an active step", () => {
    expectRefused(withActive(), ev.skipped("review"), {
      eventType: "step_skipped",
      stepId: "review",
      status: "running",
      atVersion: 2,
      message:
        'step_skipped for step "review" refused: an active or completed step cannot be skipped (it is active); workflow is running at version 2.',
    });
  });

  it("is refused for a completed step", () => {
    expectRefused(
      stateAfter(ev.started(), ev.activated("review"), ev.completed("review")),
      ev.skipped("review"),
      {
        eventType: "step_skipped",
        stepId: "review",
        status: "running",
        atVersion: 3,
        mentions: ["(it is completed)"],
      },
    );
  });

  it("is refused unless the workflow is running, even after a recoverable failure", () => {
    expectRefused(emptyWorkflowState(), ev.skipped("review"), {
      eventType: "step_skipped",
      stepId: "review",
      status: "pending",
      atVersion: 0,
      message:
        'step_skipped for step "review" refused: steps can only be skipped while the workflow is running; workflow is pending at version 0.',
    });
    expectRefused(stateAfter(ev.started(), ev.workflowFailed(true)), ev.skipped("review"), {
      eventType: "step_skipped",
      stepId: "review",
      status: "failed",
      atVersion: 2,
      mentions: ["failed (recoverable)"],
    });
    expectRefused(stateAfter(ev.started(), ev.workflowCompleted()), ev.skipped("review"), {
      eventType: "step_skipped",
      stepId: "review",
      status: "completed",
      atVersion: 2,
    });
  });
});

describe("transition_occurred", () => {
  it("moves current_step and records the last transition", () => {
    const next = apply(withActive("draft"), ev.transition("draft", "review", "score >= 8", 18));
    expect(next.current_step).toBe("review");
    expect(next.last_transition).toEqual({
      from_step: "draft",
      to_step: "review",
      condition_met: "score >= 8",
      occurred_at: "2026-01-31T12:00:18Z",
    });
    // The target step is not created by a transition.
    expect(Object.hasOwn(next.steps, "review")).toBe(false);
  });

  it("chains from the step it moved to, with a null condition", () => {
    const state = stateAfter(ev.started(), ev.activated("a"), ev.transition("a", "b"));
    const next = apply(state, ev.transition("b", "c", null, 19));
    expect(next.current_step).toBe("c");
    expect(next.last_transition).toEqual({
      from_step: "b",
      to_step: "c",
      condition_met: null,
      occurred_at: at(19),
    });
  });

  it("is refused when from_step is not the current step", () => {
    expectRefused(withActive("draft"), ev.transition("review", "publish"), {
      eventType: "transition_occurred",
      stepId: "review",
      status: "running",
      atVersion: 2,
      message:
        'transition_occurred from step "review" to step "publish" refused: the from_step is not the current step (the current step is "draft"); workflow is running at version 2.',
    });
  });

  it("is refused when there is no current step", () => {
    expectRefused(running(), ev.transition("draft", "review"), {
      eventType: "transition_occurred",
      stepId: "draft",
      status: "running",
      atVersion: 1,
      mentions: ["there is no current step"],
    });
  });

  it("is refused unless the workflow is running", () => {
    const failed = stateAfter(ev.started(), ev.activated("draft"), ev.workflowFailed(true));
    expectRefused(failed, ev.transition("draft", "review"), {
      eventType: "transition_occurred",
      stepId: "draft",
      status: "failed",
      atVersion: 3,
      message:
        'transition_occurred from step "draft" to step "review" refused: transitions can only occur while the workflow is running; workflow is failed (recoverable) at version 3.',
    });
  });
});

describe("consensus_calculated", () => {
  it("records consensus for a known step and keeps only the latest", () => {
    const first = apply(withActive(), ev.consensus("review", 0.5, 20));
    expect(first.consensus).toEqual({
      review: { agreement: 0.5, metric: "majority", resolved_by: "vote", calculated_at: at(20) },
    });
    const second = apply(first, ev.consensus("review", 0.9, 21));
    expect(second.consensus).toEqual({
      review: { agreement: 0.9, metric: "majority", resolved_by: "vote", calculated_at: at(21) },
    });
    expect(second.steps).toBe(first.steps);
  });

  it("accepts a skipped step and a recoverably failed workflow", () => {
    const state = stateAfter(ev.started(), ev.skipped("s"), ev.workflowFailed(true));
    const next = apply(state, ev.consensus("s", 1));
    expect(next.consensus.s?.agreement).toBe(1);
  });

  it("is refused for an unknown step", () => {
    expectRefused(running(), ev.consensus("review"), {
      eventType: "consensus_calculated",
      stepId: "review",
      status: "running",
      atVersion: 1,
      message:
        'consensus_calculated for step "review" refused: the step is unknown (it was never activated or skipped); workflow is running at version 1.',
    });
  });

  it("is refused once the workflow has ended", () => {
    expectRefused(
      stateAfter(ev.started(), ev.activated("review"), ev.workflowCompleted()),
      ev.consensus("review"),
      {
        eventType: "consensus_calculated",
        stepId: "review",
        status: "completed",
        atVersion: 3,
        mentions: ["has ended"],
      },
    );
  });
});

describe("context_updated", () => {
  it("sets and overwrites a key while running, sharing the unchanged maps", () => {
    const state = withActive();
    const first = apply(state, ev.context("lang", "en"));
    expect(first.context).toEqual({ lang: "en" });
    expect(first.steps).toBe(state.steps);
    expect(first.consensus).toBe(state.consensus);
    const second = apply(first, ev.context("lang", { primary: "fr", fallback: ["en"] }));
    expect(second.context).toEqual({ lang: { primary: "fr", fallback: ["en"] } });
    expect(first.context).toEqual({ lang: "en" });
  });

  it("is accepted after a recoverable failure without resuming the workflow", () => {
    const next = apply(stateAfter(ev.started(), ev.workflowFailed(true)), ev.context("retry_hint", 3));
    expect(next.context).toEqual({ retry_hint: 3 });
    expect(next.status).toBe("failed");
    expect(next.error?.recoverable).toBe(true);
  });

  it("is refused before start, after completion and after an unrecoverable failure", () => {
    expectRefused(emptyWorkflowState(), ev.context("lang", "en"), {
      eventType: "context_updated",
      stepId: null,
      status: "pending",
      atVersion: 0,
      message:
        'context_updated for key "lang" refused: the context can only be updated while the workflow is running or after a recoverable failure; workflow is pending at version 0.',
    });
    expectRefused(stateAfter(ev.started(), ev.workflowCompleted()), ev.context("lang", "en"), {
      eventType: "context_updated",
      stepId: null,
      status: "completed",
      atVersion: 2,
      mentions: ['key "lang"'],
    });
    expectRefused(stateAfter(ev.started(), ev.workflowFailed(false)), ev.context("lang", "en"), {
      eventType: "context_updated",
      stepId: null,
      status: "failed",
      atVersion: 2,
      mentions: ['key "lang"', "failed (unrecoverable)"],
    });
  });
});

describe("workflow_completed", () => {
  it("completes a running workflow", () => {
    const next = apply(withActive(), ev.workflowCompleted({ summary: "shipped" }, 22));
    expect(next.status).toBe("completed");
    expect(next.final_output).toEqual({ summary: "shipped" });
    expect(next.completed_at).toBe(at(22));
    expect(next.error).toBeNull();
  });

  it("is refused unless running", () => {
    expectRefused(emptyWorkflowState(), ev.workflowCompleted(), {
      eventType: "workflow_completed",
      stepId: null,
      status: "pending",
      atVersion: 0,
      message:
        "workflow_completed refused: only a running workflow can complete; workflow is pending at version 0.",
    });
    expectRefused(stateAfter(ev.started(), ev.workflowCompleted()), ev.workflowCompleted(), {
      eventType: "workflow_completed",
      stepId: null,
      status: "completed",
      atVersion: 2,
    });
    expectRefused(stateAfter(ev.started(), ev.workflowFailed(true)), ev.workflowCompleted(), {
      eventType: "workflow_completed",
      stepId: null,
      status: "failed",
      atVersion: 2,
      mentions: ["failed (recoverable)"],
    });
  });
});

describe("workflow_failed", () => {
  it("fails a running workflow, recoverably or not", () => {
    for (const recoverable of [true, false]) {
      const next = apply(withActive(), ev.workflowFailed(recoverable, "quota exceeded", 23));
      expect(next.status).toBe("failed");
      expect(next.error).toEqual({ message: "quota exceeded", recoverable, failed_at: at(23) });
      expect(next.failed_at).toBe(at(23));
      expect(next.current_step).toBe("review");
    }
  });

  it("is refused unless running", () => {
    expectRefused(stateAfter(ev.started(), ev.workflowFailed(true)), ev.workflowFailed(false), {
      eventType: "workflow_failed",
      stepId: null,
      status: "failed",
      atVersion: 2,
      message:
        "workflow_failed refused: only a running workflow can fail; workflow is failed (recoverable) at version 2.",
    });
    expectRefused(emptyWorkflowState(), ev.workflowFailed(true), {
      eventType: "workflow_failed",
      stepId: null,
      status: "pending",
      atVersion: 0,
    });
    expectRefused(stateAfter(ev.started(), ev.workflowCompleted()), ev.workflowFailed(true), {
      eventType: "workflow_failed",
      stepId: null,
      status: "completed",
      atVersion: 2,
    });
  });
});

describe("terminal states", () => {
  const stepOf = (event: WorkflowEvent): string | null => {
    if ("step_id" in event) return event.step_id;
    if (event.type === "transition_occurred") return event.from_step;
    return null;
  };

  it("refuses every event after an unrecoverable failure, even for an active step", () => {
    const state = stateAfter(
      ev.started(),
      ev.activated("review"),
      ev.consensus("review"),
      ev.workflowFailed(false, "fatal"),
    );
    for (const event of oneOfEach()) {
      const error = expectRefused(state, event, {
        eventType: event.type,
        stepId: stepOf(event),
        status: "failed",
        atVersion: 4,
      });
      if (event.type !== "workflow_started") expect(error.message).toContain("failed (unrecoverable)");
    }
  });

  it("refuses every event after completion", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.workflowCompleted());
    for (const event of oneOfEach()) {
      expectRefused(state, event, {
        eventType: event.type,
        stepId: stepOf(event),
        status: "completed",
        atVersion: 3,
      });
    }
  });

  it("accepts, after a recoverable failure, only resume-compatible events", () => {
    const state = stateAfter(ev.started(), ev.activated("review"), ev.workflowFailed(true));
    const accepted = oneOfEach()
      .filter((event) => {
        try {
          applyEvent(state, event);
          return true;
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidEventSequence);
          return false;
        }
      })
      .map((event) => event.type);
    // step_activated is refused here only because "review" is still active.
    expect(accepted).toEqual(["step_completed", "step_failed", "consensus_calculated", "context_updated"]);
  });
});

describe("purity", () => {
  it("never mutates the input state or event and returns a new object", () => {
    const state = deepFreeze(stateAfter(ev.started(), ev.activated("a"), ev.context("k", { n: 1 })));
    const snapshot = JSON.stringify(state);
    const events = deepFreeze([
      ev.completed("a", { deep: [1, 2] }),
      ev.consensus("a"),
      ev.context("k", { n: 2 }),
      ev.transition("a", "b"),
      ev.activated("b"),
      ev.failed("b"),
      ev.skipped("b"),
      ev.workflowCompleted(),
    ]);
    const out = applyEvents(state, events);
    expect(JSON.stringify(state)).toBe(snapshot);
    expect(out).not.toBe(state);
    expect(out.version).toBe(state.version + events.length);
    expect(state.context).toEqual({ k: { n: 1 } });
    expect(stepIn(state, "a").status).toBe("active");
  });

  it("returns the same result for the same input", () => {
    const events = [ev.started(), ev.activated("a"), ev.completed("a", 1), ev.workflowCompleted(2)];
    expect(applyEvents(emptyWorkflowState(), events)).toEqual(applyEvents(emptyWorkflowState(), events));
  });

  it("applyEvents of nothing is the state itself, and stops at the first refused event", () => {
    const state = running();
    expect(applyEvents(state, [])).toBe(state);
    expect(() => applyEvents(state, [ev.activated("a"), ev.activated("a"), ev.completed("a")])).toThrow(
      'step_activated for step "a" refused: the step is already active; workflow is running at version 2.',
    );
  });

  it("increments the version by exactly one per event", () => {
    const events = [
      ev.started(),
      ev.activated("a"),
      ev.context("x", 1),
      ev.consensus("a"),
      ev.completed("a"),
      ev.transition("a", "b"),
      ev.skipped("c"),
      ev.workflowFailed(true),
      ev.activated("b"),
      ev.failed("b"),
      ev.workflowCompleted(),
    ];
    let state = emptyWorkflowState();
    events.forEach((event, index) => {
      state = apply(state, event);
      expect(state.version).toBe(index + 1);
    });
  });
});

describe("prototype-named keys", () => {
  it("treats inherited names as unknown steps", () => {
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expectRefused(running(), ev.completed(name), {
        eventType: "step_completed",
        stepId: name,
        status: "running",
        atVersion: 1,
        mentions: ["never activated"],
      });
      expectRefused(running(), ev.consensus(name), {
        eventType: "consensus_calculated",
        stepId: name,
        status: "running",
        atVersion: 1,
        mentions: ["unknown"],
      });
    }
  });

  it('keeps "__proto__" and "constructor" as ordinary step ids and context keys through JSON and parse', () => {
    const state = stateAfter(
      ev.started(),
      ev.activated("__proto__"),
      ev.consensus("__proto__", 0.6),
      ev.completed("__proto__", { polluted: true }),
      ev.activated("constructor"),
      ev.context("__proto__", { polluted: true }),
      ev.context("constructor", "ctor"),
      ev.transition("constructor", "__proto__"),
    );
    for (const map of [state.steps, state.consensus, state.context]) {
      expect(Object.getPrototypeOf(map)).toBe(Object.prototype);
    }
    expect(Object.keys(state.steps)).toEqual(["__proto__", "constructor"]);
    expect(Object.keys(state.consensus)).toEqual(["__proto__"]);
    expect(Object.keys(state.context)).toEqual(["__proto__", "constructor"]);
    expect(stepIn(state, "__proto__").result).toEqual({ polluted: true });
    expect(stepIn(state, "constructor").status).toBe("active");
    expect(state.current_step).toBe("__proto__");
    // Nothing leaked onto Object.prototype.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    const json = JSON.stringify(state);
    expect(json).toContain('"steps":{"__proto__":{"status":"completed"');
    expect(json).toContain('"context":{"__proto__":{"polluted":true},"constructor":"ctor"}');
    const decoded: unknown = JSON.parse(json);
    const parsed = WorkflowStateSchema.parse(decoded);
    expect(Object.keys(parsed.steps)).toEqual(["__proto__", "constructor"]);
    expect(Object.keys(parsed.consensus)).toEqual(["__proto__"]);
    expect(Object.keys(parsed.context)).toEqual(["__proto__", "constructor"]);
    expect(Object.getPrototypeOf(parsed.steps)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(parsed.context)).toBe(Object.prototype);
    expect(JSON.stringify(parsed)).toBe(json);
    expect(parsed).toEqual(state);

    // The decoded state keeps working with the rules.
    const next = applyEvent(parsed, ev.completed("constructor", "built"));
    expect(stepIn(next, "constructor").status).toBe("completed");
    expectRefused(parsed, ev.activated("constructor"), {
      eventType: "step_activated",
      stepId: "constructor",
      status: "running",
      atVersion: 8,
      mentions: ["already active"],
    });
  });
});

describe("a long valid sequence", () => {
  const events: WorkflowEvent[] = [
    ev.started(0),
    ev.context("topic", "edge databases", 1),
    ev.activated("draft", 2, [AGENT_A]),
    ev.failed("draft", "rate limited", 1, 3),
    ev.activated("draft", 4, [AGENT_B]),
    ev.completed("draft", { text: "first draft", words: 1200 }, 5),
    ev.consensus("draft", 0.66, 6),
    ev.transition("draft", "review", "draft ready", 7),
    ev.activated("review", 8, [AGENT_A, AGENT_B]),
    ev.workflowFailed(true, "reviewer pool empty", 9),
    ev.context("reviewers", [AGENT_A], 10),
    ev.activated("fact_check", 11),
    ev.completed("review", { approved: true }, 12),
    ev.consensus("review", 1, 13),
    ev.completed("fact_check", null, 14),
    ev.skipped("illustrate", "no budget", 15),
    ev.transition("fact_check", "publish", null, 16),
    ev.activated("publish", 17),
    ev.completed("publish", "https://example.test/post", 18),
    ev.context("topic", { final: "edge databases" }, 19),
    ev.workflowCompleted({ url: "https://example.test/post", steps: 4 }, 20),
  ];

  it("reduces to the expected state, which validates and survives a JSON round trip", () => {
    const state = applyEvents(emptyWorkflowState(), deepFreeze(events));
    expect(state).toEqual({
      version: 21,
      status: "completed",
      workflow_id: WORKFLOW_ID,
      config_version: "v3",
      current_step: "publish",
      steps: {
        draft: {
          status: "completed",
          assigned_to: [AGENT_B],
          result: { text: "first draft", words: 1200 },
          error: null,
          retries: 1,
          reason: null,
          activated_at: at(4),
          completed_at: at(5),
          failed_at: null,
          skipped_at: null,
        },
        review: {
          status: "completed",
          assigned_to: [AGENT_A, AGENT_B],
          result: { approved: true },
          error: null,
          retries: 0,
          reason: null,
          activated_at: at(8),
          completed_at: at(12),
          failed_at: null,
          skipped_at: null,
        },
        fact_check: {
          status: "completed",
          assigned_to: [AGENT_A],
          result: null,
          error: null,
          retries: 0,
          reason: null,
          activated_at: at(11),
          completed_at: at(14),
          failed_at: null,
          skipped_at: null,
        },
        illustrate: {
          status: "skipped",
          assigned_to: [],
          result: null,
          error: null,
          retries: 0,
          reason: "no budget",
          activated_at: null,
          completed_at: null,
          failed_at: null,
          skipped_at: at(15),
        },
        publish: {
          status: "completed",
          assigned_to: [AGENT_A],
          result: "https://example.test/post",
          error: null,
          retries: 0,
          reason: null,
          activated_at: at(17),
          completed_at: at(18),
          failed_at: null,
          skipped_at: null,
        },
      },
      consensus: {
        draft: { agreement: 0.66, metric: "majority", resolved_by: "vote", calculated_at: at(6) },
        review: { agreement: 1, metric: "majority", resolved_by: "vote", calculated_at: at(13) },
      },
      context: { topic: { final: "edge databases" }, reviewers: [AGENT_A] },
      last_transition: {
        from_step: "fact_check",
        to_step: "publish",
        condition_met: null,
        occurred_at: at(16),
      },
      final_output: { url: "https://example.test/post", steps: 4 },
      error: null,
      started_at: at(0),
      completed_at: at(20),
      failed_at: null,
    });

    const parsed = WorkflowStateSchema.parse(state);
    expect(parsed).toEqual(state);
    const roundTripped: unknown = JSON.parse(JSON.stringify(state));
    expect(roundTripped).toEqual(state);
    expect(WorkflowStateSchema.parse(roundTripped)).toEqual(state);
  });

  it("every intermediate state validates and survives a JSON round trip", () => {
    let state = emptyWorkflowState();
    for (const event of events) {
      state = applyEvent(state, event);
      const roundTripped = WorkflowStateSchema.parse(JSON.parse(JSON.stringify(state)));
      expect(roundTripped).toEqual(state);
    }
    expect(state.version).toBe(events.length);
  });
});
