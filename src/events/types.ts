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

/**
 * The ten event types, each with the field that holds its timestamp: the event's last
 * field, as the seed writes it, and the one the server fills when a client leaves it out.
 */
export const TIMESTAMP_FIELD = {
  workflow_started: "started_at",
  step_activated: "activated_at",
  step_completed: "completed_at",
  step_failed: "failed_at",
  step_skipped: "skipped_at",
  transition_occurred: "occurred_at",
  consensus_calculated: "calculated_at",
  context_updated: "updated_at",
  workflow_completed: "completed_at",
  workflow_failed: "failed_at",
} as const;

export type WorkflowEventType = keyof typeof TIMESTAMP_FIELD;

export const WORKFLOW_EVENT_TYPES = Object.keys(TIMESTAMP_FIELD) as readonly WorkflowEventType[];

/** One event type's schema: its tag, its own fields, then its timestamp. */
function variant<const T extends WorkflowEventType, const S extends z.ZodRawShape>(type: T, fields: S) {
  const timestamp = { [TIMESTAMP_FIELD[type]]: Timestamp } as {
    [P in (typeof TIMESTAMP_FIELD)[T]]: typeof Timestamp;
  };
  return z.object({ type: z.literal(type), ...fields, ...timestamp });
}

export const WorkflowStarted = variant("workflow_started", {
  workflow_id: Uuid,
  config_version: z.string({ error: "expected a string" }),
});

export const StepActivated = variant("step_activated", {
  step_id: Name,
  assigned_to: z.array(Uuid, { error: "expected an array of UUIDs" }),
});

/** The seed leaves StepResult open; any JSON value is a result. */
export const StepResult = JsonValue;

export const StepCompleted = variant("step_completed", {
  step_id: Name,
  result: StepResult,
});

export const StepFailed = variant("step_failed", {
  step_id: Name,
  error: z.string({ error: "expected a string" }),
  retries: z
    .number({ error: "expected an integer from 0 to 255" })
    .int({ error: "expected an integer from 0 to 255" })
    .min(0, { error: "expected an integer from 0 to 255 (a u8)" })
    .max(255, { error: "expected an integer from 0 to 255 (a u8)" }),
});

export const StepSkipped = variant("step_skipped", {
  step_id: Name,
  reason: z.string({ error: "expected a string" }),
});

export const TransitionOccurred = variant("transition_occurred", {
  from_step: Name,
  to_step: Name,
  condition_met: optionalText,
});

export const ConsensusCalculated = variant("consensus_calculated", {
  step_id: Name,
  agreement: z.number({ error: "expected a finite number" }),
  metric: z.string({ error: "expected a string" }),
  resolved_by: optionalText,
});

export const ContextUpdated = variant("context_updated", {
  key: Name,
  value: JsonValue,
});

export const WorkflowCompleted = variant("workflow_completed", {
  final_output: JsonValue,
});

export const WorkflowFailed = variant("workflow_failed", {
  error: z.string({ error: "expected a string" }),
  recoverable: z.boolean({ error: "expected true or false" }),
});

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
