import { z } from "zod";
import { CodedError } from "../events/failure";
import { JsonValue, Name } from "../events/wire";
import { ownKeyRecord, StepStatus, type WorkflowState, WorkflowStatus } from "./workflow-state";

// An append's condition on the workflow state (the body's `if`): a partial picture of
// the state, in the state's own field names, that must match the state the append meets.
// The stream actor checks it against its draft, inside the batch, just before the
// workflow rules, so "complete step X only if the workflow is still at X" needs neither
// an exact expected version nor a read. The language is closed: four fields, equality only.
//
//   status        the workflow's status                     {"status": "running"}
//   current_step  the current step; null: none             {"current_step": "review"}
//   steps         step id → its status; null: no such step  {"steps": {"review": "active"}}
//   context       key → its value (JSON equality)           {"context": {"approved": true}}
//
// Every field given must match (AND); a context key absent from the state matches no value.

/** Most step ids, and most context keys, one condition may name. */
export const MAX_CONDITION_ENTRIES = 32;

const FIELDS = "status, current_step, steps, context";

export const StateCondition = z
  .strictObject(
    {
      status: WorkflowStatus.optional().meta({ description: "The workflow's status." }),
      current_step: Name.nullable()
        .optional()
        .meta({ description: "The current step's id; null: the workflow has no current step." }),
      steps: ownKeyRecord(StepStatus.nullable())
        .optional()
        .meta({
          type: "object",
          additionalProperties: { anyOf: [{ type: "string", enum: StepStatus.options }, { type: "null" }] },
          description: "Step id → the step's status; null: the workflow has no such step yet.",
        }),
      context: ownKeyRecord(JsonValue).optional().meta({
        type: "object",
        additionalProperties: {},
        description: "Context key → its value, compared as JSON; a key the context lacks matches nothing.",
      }),
    },
    {
      error: (issue) => (issue.code === "unrecognized_keys" ? `a condition names only ${FIELDS}` : undefined),
    },
  )
  .superRefine((condition, ctx) => {
    if (namedFields(condition) === 0) {
      ctx.addIssue({ code: "custom", message: `name at least one of ${FIELDS}` });
    }
    for (const field of ["steps", "context"] as const) {
      const size = Object.keys(condition[field] ?? {}).length;
      if (size > MAX_CONDITION_ENTRIES) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: `name at most ${MAX_CONDITION_ENTRIES} entries (got ${size})`,
        });
      }
    }
  });
export type StateCondition = z.output<typeof StateCondition>;

function namedFields(condition: StateCondition): number {
  return (
    (condition.status === undefined ? 0 : 1) +
    (condition.current_step === undefined ? 0 : 1) +
    Object.keys(condition.steps ?? {}).length +
    Object.keys(condition.context ?? {}).length
  );
}

/** How a state fails a condition. */
export interface ConditionMismatch {
  /** The state's values of every field the condition names, in the condition's shape (absent context keys left out). */
  state: StateCondition;
  /** JSON pointers (into the condition) of the fields that did not match. */
  unmet: string[];
  /** One phrase per unmet field: `current_step is "approve", not "review"`. */
  differences: string[];
}

/** Undefined when `state` meets `condition`; otherwise what the state holds and which fields differ. */
export function checkCondition(
  condition: StateCondition,
  state: WorkflowState,
): ConditionMismatch | undefined {
  const actual: StateCondition = {};
  const unmet: string[] = [];
  const differences: string[] = [];
  const compare = (pointer: string, name: string, is: JsonValue | undefined, wanted: JsonValue) => {
    if (is !== undefined && sameJson(is, wanted)) return;
    unmet.push(pointer);
    differences.push(`${name} is ${is === undefined ? "not set" : shown(is)}, not ${shown(wanted)}`);
  };
  if (condition.status !== undefined) {
    actual.status = state.status;
    compare("/status", "status", state.status, condition.status);
  }
  if (condition.current_step !== undefined) {
    actual.current_step = state.current_step;
    compare("/current_step", "current_step", state.current_step, condition.current_step);
  }
  if (condition.steps !== undefined) {
    const steps: Record<string, StepStatus | null> = {};
    for (const [id, wanted] of Object.entries(condition.steps)) {
      const status = Object.hasOwn(state.steps, id) ? (state.steps[id]?.status ?? null) : null;
      steps[id] = status;
      compare(`/steps/${pointerToken(id)}`, `steps[${shown(id)}]`, status, wanted);
    }
    actual.steps = steps;
  }
  if (condition.context !== undefined) {
    const context: Record<string, JsonValue> = {};
    for (const [key, wanted] of Object.entries(condition.context)) {
      const value = Object.hasOwn(state.context, key) ? state.context[key] : undefined;
      if (value !== undefined) context[key] = value;
      compare(`/context/${pointerToken(key)}`, `context[${shown(key)}]`, value, wanted);
    }
    actual.context = context;
  }
  return unmet.length === 0 ? undefined : { state: actual, unmet, differences };
}

/** The append's condition did not hold in the state the append met: nothing was written. */
export class ConditionFailed extends CodedError {
  constructor(
    readonly streamId: string,
    readonly condition: StateCondition,
    readonly mismatch: ConditionMismatch,
    /** The version of the state the condition was checked against. */
    readonly atVersion: number,
  ) {
    super(
      "condition_failed",
      `Stream ${streamId} at version ${atVersion} does not meet the append's condition: ` +
        `${mismatch.differences.join("; ")}. Nothing was written; \`state\` holds the values the condition names, decide again from them.`,
      {
        condition: condition as Record<string, JsonValue>,
        state: mismatch.state as Record<string, JsonValue>,
        unmet: mismatch.unmet,
        version: atVersion,
      },
    );
  }
}

/** A value as a message shows it: JSON, cut at 80 characters. */
function shown(value: JsonValue): string {
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A JSON pointer reference token (RFC 6901): "~" and "/" escaped. */
function pointerToken(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** JSON equality: same type and value, arrays in order, objects by their own keys in any order. */
export function sameJson(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((item, index) => sameJson(item, b[index] as JsonValue))
    );
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && sameJson(a[key] as JsonValue, b[key] as JsonValue));
}
