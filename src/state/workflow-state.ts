import { z } from "zod";
import { JsonValue, Timestamp, Uuid } from "../events/wire";

// WorkflowState: the small, bounded projection of a stream that the actor caches and
// snapshots. History is not kept here (it is in the log), so the state's size does
// not grow with the number of events.

/**
 * Bump when the shape or the meaning of WorkflowState changes. Snapshots of any
 * other schema version are skipped on replay, never trusted.
 */
export const STATE_SCHEMA_VERSION = 1;

export const WorkflowStatus = z.enum(["pending", "running", "completed", "failed"]);
export type WorkflowStatus = z.infer<typeof WorkflowStatus>;

export const StepStatus = z.enum(["active", "completed", "failed", "skipped"]);
export type StepStatus = z.infer<typeof StepStatus>;

const nullableTimestamp = Timestamp.nullable();

/**
 * A string-keyed record like `z.record(z.string(), value)`, except that every own key
 * survives, "__proto__" included. zod's record (4.x) silently drops a "__proto__" key,
 * which would make a snapshot of a state with such a step id or context key decode to
 * a different state. The output is a plain object whose entries are all own properties.
 */
export function ownKeyRecord<T extends z.ZodType>(value: T) {
  return z
    .custom<Record<string, unknown>>(
      (input) => {
        if (typeof input !== "object" || input === null) return false;
        const prototype: unknown = Object.getPrototypeOf(input);
        return prototype === Object.prototype || prototype === null;
      },
      { error: "expected an object" },
    )
    .meta({ type: "object", description: "A map from string keys" })
    .transform((input, ctx) => {
      const entries: [string, z.output<T>][] = [];
      for (const key of Object.keys(input)) {
        const parsed = value.safeParse(input[key]);
        if (parsed.success) {
          entries.push([key, parsed.data]);
        } else {
          for (const issue of parsed.error.issues) {
            ctx.addIssue({ code: "custom", message: issue.message, path: [key, ...issue.path] });
          }
        }
      }
      // Object.fromEntries defines own data properties, so "__proto__" stays a key.
      return Object.fromEntries(entries) as Record<string, z.output<T>>;
    });
}

export const StepState = z.object({
  status: StepStatus,
  assigned_to: z.array(Uuid),
  result: JsonValue.nullable(),
  error: z.string().nullable(),
  retries: z.number().int().min(0).max(255),
  reason: z.string().nullable(),
  activated_at: nullableTimestamp,
  completed_at: nullableTimestamp,
  failed_at: nullableTimestamp,
  skipped_at: nullableTimestamp,
});
export type StepState = z.infer<typeof StepState>;

export const WorkflowState = z.object({
  /** Number of events applied; equals the stream version the state reflects. */
  version: z.number().int().min(0),
  status: WorkflowStatus,
  workflow_id: Uuid.nullable(),
  config_version: z.string().nullable(),
  current_step: z.string().nullable(),
  steps: ownKeyRecord(StepState),
  /** The latest consensus per step. */
  consensus: ownKeyRecord(
    z.object({
      agreement: z.number(),
      metric: z.string(),
      resolved_by: z.string().nullable(),
      calculated_at: Timestamp,
    }),
  ),
  context: ownKeyRecord(JsonValue),
  last_transition: z
    .object({
      from_step: z.string(),
      to_step: z.string(),
      condition_met: z.string().nullable(),
      occurred_at: Timestamp,
    })
    .nullable(),
  /** Present (possibly JSON null) once the workflow completed. */
  final_output: JsonValue.nullable(),
  /** Why the workflow failed, once it has. */
  error: z.object({ message: z.string(), recoverable: z.boolean(), failed_at: Timestamp }).nullable(),
  started_at: nullableTimestamp,
  completed_at: nullableTimestamp,
  failed_at: nullableTimestamp,
});
export type WorkflowState = z.infer<typeof WorkflowState>;

/** The state of a stream with no events. */
export function emptyWorkflowState(): WorkflowState {
  return {
    version: 0,
    status: "pending",
    workflow_id: null,
    config_version: null,
    current_step: null,
    steps: {},
    consensus: {},
    context: {},
    last_transition: null,
    final_output: null,
    error: null,
    started_at: null,
    completed_at: null,
    failed_at: null,
  };
}
