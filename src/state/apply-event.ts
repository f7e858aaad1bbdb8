import type { EventOf, WorkflowEvent, WorkflowEventType } from "../events/types";
import { InvalidEventSequence } from "./invalid-event-sequence";
import type { StepState, WorkflowState } from "./workflow-state";

// The pure reducer: the state rules of DESIGN.md ("State and its rules"). It never
// reads a clock, does no I/O, and never mutates its input: every call returns a new
// state object, copying only the maps that change (the rest is shared).
//
// Completed and unrecoverably failed workflows are terminal: every event is refused.
//
// Step ids and context keys are arbitrary strings, including "__proto__" and
// "constructor": lookups go through Object.hasOwn and maps are written with computed
// keys in fresh object literals, which always define an own property.

/** Each event type's rule: the state after the event, or InvalidEventSequence. */
const RULES: { [T in WorkflowEventType]: (state: WorkflowState, event: EventOf<T>) => WorkflowState } = {
  workflow_started: workflowStarted,
  step_activated: stepActivated,
  step_completed: stepCompleted,
  step_failed: stepFailed,
  step_skipped: stepSkipped,
  transition_occurred: transitionOccurred,
  consensus_calculated: consensusCalculated,
  context_updated: contextUpdated,
  workflow_completed: workflowCompleted,
  workflow_failed: workflowFailed,
};

/** Applies one event to a state, or throws InvalidEventSequence when the rules refuse it. */
export function applyEvent(state: WorkflowState, event: WorkflowEvent): WorkflowState {
  return ruleOf(event)(state, event);
}

/** The rule for the event's type; TypeScript cannot pair a type's rule with its event by itself. */
function ruleOf<T extends WorkflowEventType>(
  event: EventOf<T>,
): (state: WorkflowState, event: EventOf<T>) => WorkflowState {
  if (!Object.hasOwn(RULES, event.type)) {
    throw new TypeError(`unknown event type ${JSON.stringify(event.type)}`);
  }
  return RULES[event.type as T];
}

/** Applies events in order; throws on the first one the rules refuse. */
export function applyEvents(state: WorkflowState, events: readonly WorkflowEvent[]): WorkflowState {
  let current = state;
  for (const event of events) current = applyEvent(current, event);
  return current;
}

// ---------------------------------------------------------------------------------
// Event handlers

function workflowStarted(state: WorkflowState, event: EventOf<"workflow_started">): WorkflowState {
  if (state.version !== 0 || state.status !== "pending") {
    const reason =
      state.version !== 0
        ? `the stream already has ${plural(state.version, "event")} (workflow is ${describeStatus(state)})`
        : `the workflow is not pending (workflow is ${describeStatus(state)})`;
    throw new InvalidEventSequence(
      `workflow_started refused: ${reason}.`,
      event.type,
      null,
      state.status,
      state.version,
    );
  }
  return advance(state, {
    status: "running",
    workflow_id: event.workflow_id,
    config_version: event.config_version,
    started_at: event.started_at,
  });
}

function stepActivated(state: WorkflowState, event: EventOf<"step_activated">): WorkflowState {
  const resumes = isRecoverablyFailed(state);
  if (state.status !== "running" && !resumes) {
    refuse(
      state,
      event.type,
      event.step_id,
      "steps can only be activated while the workflow is running or after a recoverable failure",
    );
  }
  const previous = stepOf(state, event.step_id);
  if (previous?.status === "active") {
    refuse(state, event.type, event.step_id, "the step is already active");
  }
  const step: StepState = {
    status: "active",
    assigned_to: [...event.assigned_to],
    result: null,
    error: null,
    retries: previous?.retries ?? 0,
    reason: null,
    activated_at: event.activated_at,
    completed_at: null,
    failed_at: null,
    skipped_at: null,
  };
  return advance(state, {
    current_step: event.step_id,
    steps: withEntry(state.steps, event.step_id, step),
    // Activating a step after a recoverable failure resumes the workflow.
    ...(resumes ? { status: "running", error: null, failed_at: null } : {}),
  });
}

function stepCompleted(state: WorkflowState, event: EventOf<"step_completed">): WorkflowState {
  return endActiveStep(state, event, {
    status: "completed",
    result: event.result,
    completed_at: event.completed_at,
  });
}

function stepFailed(state: WorkflowState, event: EventOf<"step_failed">): WorkflowState {
  return endActiveStep(state, event, {
    status: "failed",
    error: event.error,
    retries: event.retries,
    failed_at: event.failed_at,
  });
}

/** Ends the event's step, which must be active, with its outcome. */
function endActiveStep(
  state: WorkflowState,
  event: EventOf<"step_completed" | "step_failed">,
  outcome: Partial<StepState>,
): WorkflowState {
  requireNotEnded(state, event.type, event.step_id);
  const step = activeStep(state, event.type, event.step_id);
  return advance(state, {
    steps: withEntry<StepState>(state.steps, event.step_id, { ...step, ...outcome }),
  });
}

function stepSkipped(state: WorkflowState, event: EventOf<"step_skipped">): WorkflowState {
  requireRunning(state, event.type, event.step_id, "steps can only be skipped while the workflow is running");
  const previous = stepOf(state, event.step_id);
  if (previous?.status === "active" || previous?.status === "completed") {
    refuse(
      state,
      event.type,
      event.step_id,
      `an active or completed step cannot be skipped (it is ${previous.status})`,
    );
  }
  // A skip replaces any earlier outcome (a failure, an earlier skip); who was assigned,
  // when it was last activated and its retries are kept.
  const step: StepState = {
    status: "skipped",
    assigned_to: previous ? [...previous.assigned_to] : [],
    result: null,
    error: null,
    retries: previous?.retries ?? 0,
    reason: event.reason,
    activated_at: previous?.activated_at ?? null,
    completed_at: null,
    failed_at: null,
    skipped_at: event.skipped_at,
  };
  return advance(state, {
    steps: withEntry(state.steps, event.step_id, step),
  });
}

function transitionOccurred(state: WorkflowState, event: EventOf<"transition_occurred">): WorkflowState {
  const subject = `transition_occurred from step ${quote(event.from_step)} to step ${quote(event.to_step)}`;
  if (state.status !== "running") {
    refuseWith(
      state,
      event.type,
      event.from_step,
      subject,
      "transitions can only occur while the workflow is running",
    );
  }
  if (event.from_step !== state.current_step) {
    const current =
      state.current_step === null
        ? "there is no current step"
        : `the current step is ${quote(state.current_step)}`;
    refuseWith(
      state,
      event.type,
      event.from_step,
      subject,
      `the from_step is not the current step (${current})`,
    );
  }
  return advance(state, {
    current_step: event.to_step,
    last_transition: {
      from_step: event.from_step,
      to_step: event.to_step,
      condition_met: event.condition_met,
      occurred_at: event.occurred_at,
    },
  });
}

function consensusCalculated(state: WorkflowState, event: EventOf<"consensus_calculated">): WorkflowState {
  requireNotEnded(state, event.type, event.step_id);
  if (stepOf(state, event.step_id) === undefined) {
    refuse(state, event.type, event.step_id, "the step is unknown (it was never activated or skipped)");
  }
  return advance(state, {
    consensus: withEntry(state.consensus, event.step_id, {
      agreement: event.agreement,
      metric: event.metric,
      resolved_by: event.resolved_by,
      calculated_at: event.calculated_at,
    }),
  });
}

function contextUpdated(state: WorkflowState, event: EventOf<"context_updated">): WorkflowState {
  if (state.status !== "running" && !isRecoverablyFailed(state)) {
    refuseWith(
      state,
      event.type,
      null,
      `context_updated for key ${quote(event.key)}`,
      "the context can only be updated while the workflow is running or after a recoverable failure",
    );
  }
  return advance(state, {
    context: withEntry(state.context, event.key, event.value),
  });
}

function workflowCompleted(state: WorkflowState, event: EventOf<"workflow_completed">): WorkflowState {
  requireRunning(state, event.type, null, "only a running workflow can complete");
  return advance(state, {
    status: "completed",
    final_output: event.final_output,
    completed_at: event.completed_at,
  });
}

function workflowFailed(state: WorkflowState, event: EventOf<"workflow_failed">): WorkflowState {
  requireRunning(state, event.type, null, "only a running workflow can fail");
  return advance(state, {
    status: "failed",
    error: { message: event.error, recoverable: event.recoverable, failed_at: event.failed_at },
    failed_at: event.failed_at,
  });
}

// ---------------------------------------------------------------------------------
// Helpers

/** The state after an accepted event: every event moves the version by one. */
function advance(state: WorkflowState, changes: Partial<Omit<WorkflowState, "version">>): WorkflowState {
  return { ...state, ...changes, version: state.version + 1 };
}

/**
 * Completed and unrecoverably failed workflows are terminal: they accept no event at
 * all. The rules of the other events already require running (or a recoverable
 * failure); this covers the three whose rule is about the step only.
 */
function requireNotEnded(state: WorkflowState, eventType: WorkflowEventType, stepId: string): void {
  if (state.status === "completed" || (state.status === "failed" && !isRecoverablyFailed(state))) {
    refuse(state, eventType, stepId, "the workflow has ended, so it accepts no more events");
  }
}

function isRecoverablyFailed(state: WorkflowState): boolean {
  return state.status === "failed" && state.error?.recoverable === true;
}

/** The step's own entry, never something inherited from Object.prototype. */
function stepOf(state: WorkflowState, stepId: string): StepState | undefined {
  return Object.hasOwn(state.steps, stepId) ? state.steps[stepId] : undefined;
}

/** A copy of the record with one entry set; a computed key always defines an own property. */
function withEntry<T>(record: Readonly<Record<string, T>>, key: string, value: T): Record<string, T> {
  return { ...record, [key]: value };
}

function activeStep(
  state: WorkflowState,
  eventType: "step_completed" | "step_failed",
  stepId: string,
): StepState {
  const step = stepOf(state, stepId);
  if (step === undefined) {
    refuse(state, eventType, stepId, "the step is not active (it was never activated)");
  }
  if (step.status !== "active") {
    refuse(state, eventType, stepId, `the step is not active (it is ${step.status})`);
  }
  return step;
}

function requireRunning(
  state: WorkflowState,
  eventType: WorkflowEventType,
  stepId: string | null,
  rule: string,
): void {
  if (state.status !== "running") refuse(state, eventType, stepId, rule);
}

function refuse(
  state: WorkflowState,
  eventType: WorkflowEventType,
  stepId: string | null,
  reason: string,
): never {
  const subject = stepId === null ? eventType : `${eventType} for step ${quote(stepId)}`;
  return refuseWith(state, eventType, stepId, subject, reason);
}

function refuseWith(
  state: WorkflowState,
  eventType: WorkflowEventType,
  stepId: string | null,
  subject: string,
  reason: string,
): never {
  throw new InvalidEventSequence(
    `${subject} refused: ${reason}; workflow is ${describeStatus(state)} at version ${state.version}.`,
    eventType,
    stepId,
    state.status,
    state.version,
  );
}

function describeStatus(state: WorkflowState): string {
  if (state.status !== "failed") return state.status;
  return state.error?.recoverable === true ? "failed (recoverable)" : "failed (unrecoverable)";
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
