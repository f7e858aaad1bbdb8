import type { NewEvent } from "../../src/events/store";
import type { WorkflowEvent } from "../../src/events/types";
import type { JsonValue } from "../../src/events/wire";

const AT = "2026-03-01T10:00:00Z";

export const started = (workflowId: string = crypto.randomUUID()): WorkflowEvent => ({
  type: "workflow_started",
  workflow_id: workflowId,
  config_version: "v1",
  started_at: AT,
});

export const contextUpdated = (key: string, value: JsonValue): WorkflowEvent => ({
  type: "context_updated",
  key,
  value,
  updated_at: AT,
});

export const stepActivated = (stepId: string): WorkflowEvent => ({
  type: "step_activated",
  step_id: stepId,
  assigned_to: [],
  activated_at: AT,
});

export const stepCompleted = (stepId: string, result: JsonValue = { ok: true }): WorkflowEvent => ({
  type: "step_completed",
  step_id: stepId,
  result,
  completed_at: AT,
});

export const workflowCompleted = (): WorkflowEvent => ({
  type: "workflow_completed",
  final_output: { done: true },
  completed_at: AT,
});

/** `count` context updates: valid after workflow_started, in any number. */
export function contextUpdates(count: number, prefix = "k"): NewEvent[] {
  return Array.from({ length: count }, (_, index) => ({ event: contextUpdated(`${prefix}${index}`, index) }));
}

export const wrap = (...events: WorkflowEvent[]): NewEvent[] => events.map((event) => ({ event }));
