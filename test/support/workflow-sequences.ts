import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { WorkflowEvent } from "../../src/events/types";
import type { JsonValue } from "../../src/events/wire";
import { applyEvent, applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState, type WorkflowState } from "../../src/state/workflow-state";

// Random VALID workflow event sequences, valid by construction.
//
// fast-check generates a list of random "choices" (a move selector plus the payload
// material an event may need); a deterministic simulator walks them from the empty
// state, asks the state which moves the rules of src/state/apply-event.ts allow, picks
// one with the choice's selector and builds the event from the choice's material. Every
// event goes through applyEvent as it is produced, and the whole sequence through
// applyEvents once more, so an invalid sequence is a bug in this file, never a sample.
//
// Every event is canonical: what WorkflowEvent.parse outputs for it, and what a JSON
// round trip (the way to and from PostgreSQL) gives back. So a test may compare states
// built from these events with states read back from the database with deep equality.

/** Step ids that make steps meet again, including keys that are special to JS objects. */
const STEP_NAMES = [
  "intake",
  "review",
  "approve",
  "ship",
  "__proto__",
  "constructor",
  "toString",
  "ステップ",
  "étape 2",
  "🚀 launch",
] as const;

const CONTEXT_KEYS = ["customer", "priority", "__proto__", "hasOwnProperty", "ключ", "🔑", "a.b"] as const;

/** Earliest and latest instants RFC 3339 can spell (years 0001-9999). */
const EARLIEST_MS = -62_135_596_800_000;
const LATEST_MS = 253_402_300_799_000;
const RECENT_MS = { min: 1_767_225_600_000, max: 1_830_297_600_000 }; // 2026-01-01 .. 2027-12-31

/** PostgreSQL cannot store U+0000 in jsonb; the store refuses it, so samples never contain it. */
const withoutNul = (text: string): string => text.replaceAll("\u0000", "");

/** Unicode text: printable graphemes (full Unicode, composites) and now and then any code point. */
const text = (maxLength: number): fc.Arbitrary<string> =>
  fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength }) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength }) },
    )
    .map(withoutNul);

const nonEmpty = (fallback: string) => (value: string) => (value === "" ? fallback : value);

const stepName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...STEP_NAMES) },
  { weight: 1, arbitrary: text(12).map(nonEmpty("step")) },
);

const contextKey = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...CONTEXT_KEYS) },
  { weight: 1, arbitrary: text(12).map(nonEmpty("key")) },
);

const objectKey = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "id", "ключ", "🔑", "") },
  { weight: 3, arbitrary: text(8) },
);

/** A finite double, never -0 (JSON has no -0: it would come back from the database as 0). */
const finiteNumber = fc
  .oneof(
    { weight: 2, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }) },
    { weight: 2, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(0.1, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, 1.7976931348623157e308),
    },
  )
  .map((value) => (Object.is(value, -0) ? 0 : value));

/** Any JSON value: scalars, unicode strings, nested arrays and objects (with awkward keys). */
export const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{
  value: JsonValue;
  array: JsonValue[];
  object: { [key: string]: JsonValue };
}>((tie) => ({
  value: fc.oneof(
    { maxDepth: 3, depthSize: "small", withCrossShrink: true },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 2, arbitrary: finiteNumber },
    { weight: 2, arbitrary: text(16) },
    { weight: 1, arbitrary: tie("array") },
    { weight: 1, arbitrary: tie("object") },
  ),
  array: fc.array(tie("value"), { maxLength: 4 }),
  object: fc.dictionary(objectKey, tie("value"), { maxKeys: 4, noNullPrototype: true }),
})).value;

/** An RFC 3339 UTC timestamp, mostly recent, sometimes any year 0001-9999, with 0-9 fraction digits. */
export const timestamp: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: fc.integer(RECENT_MS) },
      { weight: 1, arbitrary: fc.integer({ min: EARLIEST_MS, max: LATEST_MS }) },
    ),
    fc.option(fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 9 }), {
      nil: undefined,
    }),
  )
  .map(([millis, fraction]) => {
    const seconds = new Date(millis - (((millis % 1000) + 1000) % 1000)).toISOString().slice(0, 19);
    return `${seconds}${fraction === undefined ? "" : `.${fraction}`}Z`;
  });

/** A lower-case hyphenated UUID. */
const uuid = fc.uuid().map((value) => value.toLowerCase());

/** The material one step of the random walk draws on. */
interface Choice {
  /** Selects the move among those the current state allows. */
  move: number;
  /** Selects among candidates (active steps, known steps, names). */
  pick: number;
  name: string;
  toName: string;
  key: string;
  json: JsonValue;
  text: string;
  otherText: string | null;
  number: number;
  retries: number;
  assignees: string[];
  at: string;
}

const choice: fc.Arbitrary<Choice> = fc.record({
  move: fc.nat(),
  pick: fc.nat(),
  name: stepName,
  toName: stepName,
  key: contextKey,
  json: jsonValue,
  text: text(24),
  otherText: fc.option(text(12), { nil: null }),
  number: finiteNumber,
  retries: fc.integer({ min: 0, max: 255 }),
  assignees: fc.array(uuid, { maxLength: 3 }),
  at: timestamp,
});

type Ending = "none" | "completed" | "failed";

interface Plan {
  start: { workflowId: string; configVersion: string; at: string };
  choices: Choice[];
  ending: Ending;
  endingChoice: Choice;
}

type Move =
  | "activate"
  | "complete"
  | "fail_step"
  | "skip"
  | "transition"
  | "consensus"
  | "context"
  | "fail_recoverable";

/** The moves the state rules allow, repeated by weight. */
function allowedMoves(state: WorkflowState): Move[] {
  const active = stepIds(state).filter((id) => state.steps[id]?.status === "active");
  const known = stepIds(state).length > 0;
  const moves: Move[] = [];
  const add = (move: Move, weight: number, when = true) => {
    if (when) for (let i = 0; i < weight; i++) moves.push(move);
  };
  if (state.status === "running") {
    add("activate", 3);
    add("complete", 3, active.length > 0);
    add("fail_step", 1, active.length > 0);
    add("skip", 1);
    add("transition", 2, state.current_step !== null);
    add("consensus", 1, known);
    add("context", 3);
    add("fail_recoverable", 1);
  } else if (state.status === "failed" && state.error?.recoverable === true) {
    add("activate", 4);
    add("context", 1);
    add("consensus", 1, known);
    add("complete", 1, active.length > 0);
    add("fail_step", 1, active.length > 0);
  }
  return moves;
}

function stepIds(state: WorkflowState): string[] {
  return Object.keys(state.steps);
}

/** The choice's name if it suits, else the first suitable pool name from `pick`, else a fresh one. */
function pickName(c: Choice, state: WorkflowState, suits: (id: string) => boolean): string {
  if (suits(c.name)) return c.name;
  for (let i = 0; i < STEP_NAMES.length; i++) {
    const candidate = STEP_NAMES[(c.pick + i) % STEP_NAMES.length] as string;
    if (suits(candidate)) return candidate;
  }
  for (let n = state.version; ; n++) {
    const fresh = `step-${n}`;
    if (suits(fresh)) return fresh;
  }
}

function nth<T>(items: readonly T[], index: number): T {
  const item = items[index % items.length];
  if (item === undefined) throw new Error("nth of an empty list");
  return item;
}

function buildEvent(move: Move, c: Choice, state: WorkflowState): WorkflowEvent {
  const status = (id: string) => (Object.hasOwn(state.steps, id) ? state.steps[id]?.status : undefined);
  switch (move) {
    case "activate":
      return {
        type: "step_activated",
        step_id: pickName(c, state, (id) => status(id) !== "active"),
        assigned_to: c.assignees,
        activated_at: c.at,
      };
    case "complete":
      return {
        type: "step_completed",
        step_id: nth(
          stepIds(state).filter((id) => status(id) === "active"),
          c.pick,
        ),
        result: c.json,
        completed_at: c.at,
      };
    case "fail_step":
      return {
        type: "step_failed",
        step_id: nth(
          stepIds(state).filter((id) => status(id) === "active"),
          c.pick,
        ),
        error: c.text,
        retries: c.retries,
        failed_at: c.at,
      };
    case "skip":
      return {
        type: "step_skipped",
        step_id: pickName(c, state, (id) => status(id) !== "active" && status(id) !== "completed"),
        reason: c.text,
        skipped_at: c.at,
      };
    case "transition":
      return {
        type: "transition_occurred",
        from_step: state.current_step ?? "",
        to_step: c.toName,
        condition_met: c.otherText,
        occurred_at: c.at,
      };
    case "consensus":
      return {
        type: "consensus_calculated",
        step_id: nth(stepIds(state), c.pick),
        agreement: c.number,
        metric: c.text,
        resolved_by: c.otherText,
        calculated_at: c.at,
      };
    case "context":
      return { type: "context_updated", key: c.key, value: c.json, updated_at: c.at };
    case "fail_recoverable":
      return { type: "workflow_failed", error: c.text, recoverable: true, failed_at: c.at };
  }
}

/** The event as it comes back from JSON (no -0, plain objects, own "__proto__" keys). */
function canonical(event: WorkflowEvent): WorkflowEvent {
  const roundTripped: unknown = JSON.parse(JSON.stringify(event));
  const parsed = WorkflowEvent.parse(roundTripped);
  if (!isDeepStrictEqual(parsed, roundTripped)) {
    throw new Error(`generator bug: event is not canonical on the wire: ${JSON.stringify(event)}`);
  }
  return parsed;
}

/** Interprets a plan: deterministic, and every prefix of the result is a valid sequence. */
function simulate(plan: Plan, maxLength: number): WorkflowEvent[] {
  const events: WorkflowEvent[] = [];
  let state = emptyWorkflowState();
  const push = (event: WorkflowEvent) => {
    const stored = canonical(event);
    state = applyEvent(state, stored);
    events.push(stored);
  };
  push({
    type: "workflow_started",
    workflow_id: plan.start.workflowId,
    config_version: plan.start.configVersion,
    started_at: plan.start.at,
  });
  for (const c of plan.choices) {
    if (events.length >= maxLength) break;
    const moves = allowedMoves(state);
    if (moves.length === 0) break;
    push(buildEvent(nth(moves, c.move), c, state));
  }
  if (plan.ending !== "none" && maxLength > 1) {
    if (events.length >= maxLength) {
      events.length = maxLength - 1;
      state = applyEvents(emptyWorkflowState(), events);
    }
    if (state.status === "running") {
      const c = plan.endingChoice;
      push(
        plan.ending === "completed"
          ? { type: "workflow_completed", final_output: c.json, completed_at: c.at }
          : { type: "workflow_failed", error: c.text, recoverable: false, failed_at: c.at },
      );
    }
  }
  return events;
}

/**
 * Random valid WorkflowEvent sequences of 1 to `maxLength` events (lengths spread over
 * the whole range): workflow_started, then a random walk over the moves the state
 * allows, sometimes ending with workflow_completed or an unrecoverable workflow_failed.
 */
export function validWorkflowSequence(maxLength: number): fc.Arbitrary<WorkflowEvent[]> {
  if (!Number.isSafeInteger(maxLength) || maxLength < 1) {
    throw new RangeError(`maxLength must be a whole number from 1, got ${maxLength}`);
  }
  const plan: fc.Arbitrary<Plan> = fc.record({
    start: fc.record({ workflowId: uuid, configVersion: text(8), at: timestamp }),
    choices: fc.array(choice, { maxLength: maxLength - 1, size: "max" }),
    ending: fc.oneof(
      { weight: 4, arbitrary: fc.constant<Ending>("none") },
      { weight: 1, arbitrary: fc.constant<Ending>("completed") },
      { weight: 1, arbitrary: fc.constant<Ending>("failed") },
    ),
    endingChoice: choice,
  });
  return plan.map((p) => {
    const events = simulate(p, maxLength);
    // Valid by construction; checked again as a whole so a generator bug cannot hide.
    const state = applyEvents(emptyWorkflowState(), events);
    if (state.version !== events.length || events.length > maxLength) {
      throw new Error(`generator bug: ${events.length} events gave a state at version ${state.version}`);
    }
    return events;
  });
}
