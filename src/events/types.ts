import { z } from "zod";
import { JsonValue, Name, Timestamp, Uuid } from "./wire";

// The seed's WorkflowEvent, wire-compatible with its serde JSON:
// `#[serde(tag = "type", rename_all = "snake_case")]`, fields named as in the seed.
// Unknown fields are dropped (serde ignores them too); Option fields accept null or
// absence and are written as null, as serde writes None.

const optionalText = z
  .string({ error: "expected a string or null" })
  .nullish()
  .transform((value) => value ?? null);

export const WorkflowStarted = z.object({
  type: z.literal("workflow_started"),
  workflow_id: Uuid,
  config_version: z.string({ error: "expected a string" }),
  started_at: Timestamp,
});

export const StepActivated = z.object({
  type: z.literal("step_activated"),
  step_id: Name,
  assigned_to: z.array(Uuid, { error: "expected an array of UUIDs" }),
  activated_at: Timestamp,
});

/** The seed leaves StepResult open; any JSON value is a result. */
export const StepResult = JsonValue;

export const StepCompleted = z.object({
  type: z.literal("step_completed"),
  step_id: Name,
  result: StepResult,
  completed_at: Timestamp,
});

export const StepFailed = z.object({
  type: z.literal("step_failed"),
  step_id: Name,
  error: z.string({ error: "expected a string" }),
  retries: z
    .number({ error: "expected an integer from 0 to 255" })
    .int({ error: "expected an integer from 0 to 255" })
    .min(0, { error: "expected an integer from 0 to 255 (a u8)" })
    .max(255, { error: "expected an integer from 0 to 255 (a u8)" }),
  failed_at: Timestamp,
});

export const StepSkipped = z.object({
  type: z.literal("step_skipped"),
  step_id: Name,
  reason: z.string({ error: "expected a string" }),
  skipped_at: Timestamp,
});

export const TransitionOccurred = z.object({
  type: z.literal("transition_occurred"),
  from_step: Name,
  to_step: Name,
  condition_met: optionalText,
  occurred_at: Timestamp,
});

export const ConsensusCalculated = z.object({
  type: z.literal("consensus_calculated"),
  step_id: Name,
  agreement: z.number({ error: "expected a finite number" }),
  metric: z.string({ error: "expected a string" }),
  resolved_by: optionalText,
  calculated_at: Timestamp,
});

export const ContextUpdated = z.object({
  type: z.literal("context_updated"),
  key: Name,
  value: JsonValue,
  updated_at: Timestamp,
});

export const WorkflowCompleted = z.object({
  type: z.literal("workflow_completed"),
  final_output: JsonValue,
  completed_at: Timestamp,
});

export const WorkflowFailed = z.object({
  type: z.literal("workflow_failed"),
  error: z.string({ error: "expected a string" }),
  recoverable: z.boolean({ error: "expected true or false" }),
  failed_at: Timestamp,
});

export const WORKFLOW_EVENT_TYPES = [
  "workflow_started",
  "step_activated",
  "step_completed",
  "step_failed",
  "step_skipped",
  "transition_occurred",
  "consensus_calculated",
  "context_updated",
  "workflow_completed",
  "workflow_failed",
] as const;

export const WorkflowEvent = z.discriminatedUnion(
  "type",
  [
    WorkflowStarted,
    StepActivated,
    StepCompleted,
    StepFailed,
    StepSkipped,
    TransitionOccurred,
    ConsensusCalculated,
    ContextUpdated,
    WorkflowCompleted,
    WorkflowFailed,
  ],
  { error: `expected "type" to be one of ${WORKFLOW_EVENT_TYPES.join(", ")}` },
);

export type WorkflowEvent = z.output<typeof WorkflowEvent>;
export type WorkflowEventInput = z.input<typeof WorkflowEvent>;
export type WorkflowEventType = WorkflowEvent["type"];
export type EventOf<T extends WorkflowEventType> = Extract<WorkflowEvent, { type: T }>;

/** A positive stream version (1-based), as the seed's u64. */
export const Version = z
  .number({ error: "expected a positive integer version" })
  .int({ error: "expected a positive integer version" })
  .min(1, { error: "versions start at 1" })
  .max(Number.MAX_SAFE_INTEGER);

/** An event as stored in a stream (the seed's StoredEvent, plus its place in the global log). */
export const StoredEvent = z.object({
  event_id: Uuid,
  stream_id: Uuid,
  stream_type: Name,
  version: Version,
  event: WorkflowEvent,
  metadata: JsonValue,
  occurred_at: Timestamp,
  global_position: z.number().int().min(1).optional(),
});
export type StoredEvent = z.output<typeof StoredEvent>;
