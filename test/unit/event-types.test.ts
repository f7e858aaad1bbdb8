import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  StoredEvent,
  TIMESTAMP_FIELD,
  WORKFLOW_EVENT_TYPES,
  WorkflowEvent,
  type WorkflowEventType,
} from "../../src/events/types";
import { describeIssues, Timestamp, toUtcTimestamp, Uuid } from "../../src/events/wire";

// The wire contract: JSON exactly as the seed's Rust types (serde_json + chrono + uuid)
// write it. Samples below are written by hand in serde_json's compact form, with
// fields in declaration order and the `type` tag first, as `#[serde(tag = "type")]` emits.

const WORKFLOW_ID = "3f2b8c1e-9d4a-4b7e-8c21-5a6f0e9d1b2c";
const ALICE = "8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c";
const BOB = "c9f0f895-fb98-4b91-99f5-1c3b2a8d7e60";
const EVENT_ID = "0190a5c2-7b3e-7d41-9a8f-2e6c4b1d0f93";

/** Field names per variant, copied from the seed's `enum WorkflowEvent`, in declaration order. */
const SEED_FIELDS: Record<WorkflowEventType, readonly string[]> = {
  workflow_started: ["workflow_id", "config_version", "started_at"],
  step_activated: ["step_id", "assigned_to", "activated_at"],
  step_completed: ["step_id", "result", "completed_at"],
  step_failed: ["step_id", "error", "retries", "failed_at"],
  step_skipped: ["step_id", "reason", "skipped_at"],
  transition_occurred: ["from_step", "to_step", "condition_met", "occurred_at"],
  consensus_calculated: ["step_id", "agreement", "metric", "resolved_by", "calculated_at"],
  context_updated: ["key", "value", "updated_at"],
  workflow_completed: ["final_output", "completed_at"],
  workflow_failed: ["error", "recoverable", "failed_at"],
};

/** The seed's `struct StoredEvent`, in declaration order. */
const STORED_EVENT_FIELDS = [
  "event_id",
  "stream_id",
  "stream_type",
  "version",
  "event",
  "metadata",
  "occurred_at",
] as const;

/** Canonical serde_json output, one or more per variant. Parsing and re-serialising must give the same bytes. */
const CANONICAL: ReadonlyArray<{ name: string; json: string }> = [
  {
    name: "workflow_started",
    json: `{"type":"workflow_started","workflow_id":"${WORKFLOW_ID}","config_version":"2024.03.1","started_at":"2024-03-01T10:15:30Z"}`,
  },
  {
    name: "step_activated with two assignees",
    json: `{"type":"step_activated","step_id":"review","assigned_to":["${ALICE}","${BOB}"],"activated_at":"2024-03-01T10:15:30.123456789Z"}`,
  },
  {
    name: "step_activated with no assignees",
    json: `{"type":"step_activated","step_id":"triage","assigned_to":[],"activated_at":"2024-03-01T10:15:30.123456Z"}`,
  },
  {
    name: "step_completed with an object result",
    json: `{"type":"step_completed","step_id":"review","result":{"approved":true,"score":0.75,"notes":["ok",null],"nested":{"depth":2}},"completed_at":"2024-03-01T10:16:00.500Z"}`,
  },
  {
    name: "step_completed with a null result",
    json: `{"type":"step_completed","step_id":"review","result":null,"completed_at":"2024-03-01T10:16:00Z"}`,
  },
  {
    name: "step_failed",
    json: `{"type":"step_failed","step_id":"review","error":"timeout after 30s","retries":255,"failed_at":"2024-03-01T10:17:00.001Z"}`,
  },
  {
    name: "step_skipped",
    json: `{"type":"step_skipped","step_id":"legal","reason":"amount below threshold","skipped_at":"2024-03-01T10:18:00Z"}`,
  },
  {
    name: "transition_occurred with a condition",
    json: `{"type":"transition_occurred","from_step":"review","to_step":"publish","condition_met":"score >= 0.7","occurred_at":"2024-03-01T10:19:00Z"}`,
  },
  {
    name: "transition_occurred with condition_met None",
    json: `{"type":"transition_occurred","from_step":"review","to_step":"publish","condition_met":null,"occurred_at":"2024-03-01T10:19:00Z"}`,
  },
  {
    name: "consensus_calculated with resolved_by None",
    json: `{"type":"consensus_calculated","step_id":"review","agreement":0.875,"metric":"fleiss_kappa","resolved_by":null,"calculated_at":"2024-03-01T10:20:00Z"}`,
  },
  {
    name: "consensus_calculated with resolved_by Some",
    json: `{"type":"consensus_calculated","step_id":"review","agreement":-0.25,"metric":"cohen_kappa","resolved_by":"tie_breaker","calculated_at":"2024-03-01T10:20:00Z"}`,
  },
  {
    name: "context_updated",
    json: `{"type":"context_updated","key":"draft","value":[1,"two",{"three":3.5},false,null],"updated_at":"2024-03-01T10:21:00Z"}`,
  },
  {
    name: "workflow_completed",
    json: `{"type":"workflow_completed","final_output":{"summary":"published","count":2},"completed_at":"2024-03-01T10:22:00Z"}`,
  },
  {
    name: "workflow_failed",
    json: `{"type":"workflow_failed","error":"reviewer pool empty","recoverable":false,"failed_at":"2024-03-01T10:23:00Z"}`,
  },
];

function keysOf(value: unknown): string[] {
  if (typeof value !== "object" || value === null) throw new Error(`not an object: ${String(value)}`);
  return Object.keys(value);
}

/** Parses, expecting a refusal; returns the issue paths and the describeIssues text. */
function refuse(schema: z.ZodType, input: unknown): { paths: PropertyKey[][]; text: string } {
  const result = schema.safeParse(input);
  if (result.success) throw new Error(`expected a refusal, parsed as ${JSON.stringify(result.data)}`);
  return { paths: result.error.issues.map((issue) => issue.path), text: describeIssues(result.error) };
}

function eventFrom(json: string): WorkflowEvent {
  return WorkflowEvent.parse(JSON.parse(json));
}

function sample(type: WorkflowEventType): Record<string, unknown> {
  const entry = CANONICAL.find((candidate) => candidate.json.startsWith(`{"type":"${type}"`));
  if (!entry) throw new Error(`no canonical sample for ${type}`);
  const parsed: unknown = JSON.parse(entry.json);
  if (typeof parsed !== "object" || parsed === null) throw new Error("sample is not an object");
  return { ...parsed };
}

function without(record: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

describe("WorkflowEvent round trip", () => {
  it("has a canonical sample for each of the ten seed variants, and the schema knows exactly those tags", () => {
    const covered = new Set(CANONICAL.map((entry) => eventFrom(entry.json).type));
    expect([...covered].sort()).toEqual([...WORKFLOW_EVENT_TYPES].sort());
    expect(Object.keys(SEED_FIELDS).sort()).toEqual([...WORKFLOW_EVENT_TYPES].sort());
    expect(WORKFLOW_EVENT_TYPES).toHaveLength(10);
  });

  it("knows each type's timestamp field, the seed's last field of the variant", () => {
    for (const type of WORKFLOW_EVENT_TYPES) expect(TIMESTAMP_FIELD[type]).toBe(SEED_FIELDS[type].at(-1));
  });

  it.each(CANONICAL)(
    "$name: parse → stringify gives the same bytes, and re-parses to the same value",
    ({ json }) => {
      const first = eventFrom(json);
      const written = JSON.stringify(first);
      expect(written).toBe(json);
      const second = eventFrom(written);
      expect(second).toEqual(first);
      expect(JSON.stringify(second)).toBe(written);
    },
  );

  it.each(CANONICAL)("$name: output has the `type` tag then exactly the seed's field names", ({ json }) => {
    const event = eventFrom(json);
    const written: unknown = JSON.parse(JSON.stringify(event));
    expect(keysOf(written)).toEqual(["type", ...SEED_FIELDS[event.type]]);
  });

  it("writes absent Option fields as null, as serde writes None", () => {
    const transition = eventFrom(
      '{"type":"transition_occurred","from_step":"a","to_step":"b","occurred_at":"2024-03-01T10:15:30Z"}',
    );
    expect(transition).toEqual({
      type: "transition_occurred",
      from_step: "a",
      to_step: "b",
      condition_met: null,
      occurred_at: "2024-03-01T10:15:30Z",
    });
    expect(JSON.stringify(transition)).toBe(
      '{"type":"transition_occurred","from_step":"a","to_step":"b","condition_met":null,"occurred_at":"2024-03-01T10:15:30Z"}',
    );

    const consensus = eventFrom(
      '{"type":"consensus_calculated","step_id":"s","agreement":1.0,"metric":"raw","calculated_at":"2024-03-01T10:15:30Z"}',
    );
    expect(consensus.type === "consensus_calculated" && consensus.resolved_by).toBeNull();
    expect(JSON.stringify(consensus)).toBe(
      '{"type":"consensus_calculated","step_id":"s","agreement":1,"metric":"raw","resolved_by":null,"calculated_at":"2024-03-01T10:15:30Z"}',
    );
  });

  it("drops unknown fields, as serde does by default", () => {
    const event = eventFrom(
      '{"type":"workflow_failed","error":"x","recoverable":true,"failed_at":"2024-03-01T10:15:30Z","extra":{"a":1}}',
    );
    expect(JSON.stringify(event)).toBe(
      '{"type":"workflow_failed","error":"x","recoverable":true,"failed_at":"2024-03-01T10:15:30Z"}',
    );
  });
});

describe("seed-shaped samples", () => {
  const TIMESTAMPS: ReadonlyArray<{ input: string; expected: string }> = [
    { input: "2024-03-01T10:15:30Z", expected: "2024-03-01T10:15:30Z" },
    { input: "2024-03-01T10:15:30.123Z", expected: "2024-03-01T10:15:30.123Z" },
    { input: "2024-03-01T10:15:30.123456Z", expected: "2024-03-01T10:15:30.123456Z" },
    { input: "2024-03-01T10:15:30.123456789Z", expected: "2024-03-01T10:15:30.123456789Z" },
    { input: "2024-03-01T10:15:30.5Z", expected: "2024-03-01T10:15:30.5Z" },
    { input: "2024-03-01T10:15:30+00:00", expected: "2024-03-01T10:15:30Z" },
    { input: "2024-03-01T12:15:30+02:00", expected: "2024-03-01T10:15:30Z" },
    { input: "2024-03-01T12:15:30.123456789+02:00", expected: "2024-03-01T10:15:30.123456789Z" },
    // An offset that moves the instant across a (leap) day, a month and a year.
    { input: "2024-03-01T00:30:00.5+02:00", expected: "2024-02-29T22:30:00.5Z" },
    { input: "2024-02-29T23:45:00-05:30", expected: "2024-03-01T05:15:00Z" },
    { input: "2023-12-31T23:59:59.999999999-01:00", expected: "2024-01-01T00:59:59.999999999Z" },
    // Four-digit years below 100 are real years to chrono, not 1900 + year.
    { input: "0050-06-15T08:00:00Z", expected: "0050-06-15T08:00:00Z" },
    { input: "0099-12-31T23:30:00-01:00", expected: "0100-01-01T00:30:00Z" },
    { input: "0000-02-29T12:00:00Z", expected: "0000-02-29T12:00:00Z" },
    { input: "9999-12-31T23:59:59.999999999Z", expected: "9999-12-31T23:59:59.999999999Z" },
  ];

  it.each(TIMESTAMPS)("timestamp $input parses as $expected", ({ input, expected }) => {
    expect(Timestamp.parse(input)).toBe(expected);
    expect(toUtcTimestamp(input)).toBe(expected);
    const event = WorkflowEvent.parse({
      type: "workflow_started",
      workflow_id: WORKFLOW_ID,
      config_version: "1",
      started_at: input,
    });
    expect(event.type === "workflow_started" && event.started_at).toBe(expected);
    // The normalised form is itself accepted unchanged.
    expect(Timestamp.parse(expected)).toBe(expected);
  });

  it("normalises upper-case hyphenated UUIDs to lower case", () => {
    expect(Uuid.parse("3F2B8C1E-9D4A-4B7E-8C21-5A6F0E9D1B2C")).toBe(WORKFLOW_ID);
    const event = eventFrom(
      `{"type":"step_activated","step_id":"review","assigned_to":["${ALICE.toUpperCase()}","${BOB}"],"activated_at":"2024-03-01T10:15:30Z"}`,
    );
    expect(event.type === "step_activated" && event.assigned_to).toEqual([ALICE, BOB]);
  });

  it.each([
    { name: "absent", extra: "" },
    { name: "null", extra: ',"condition_met":null' },
  ])("condition_met $name parses as null", ({ extra }) => {
    const event = eventFrom(
      `{"type":"transition_occurred","from_step":"a","to_step":"b"${extra},"occurred_at":"2024-03-01T10:15:30Z"}`,
    );
    expect(event.type === "transition_occurred" && event.condition_met).toBeNull();
  });

  it.each([
    { name: "absent", extra: "", expected: null },
    { name: "null", extra: ',"resolved_by":null', expected: null },
    { name: "a string", extra: ',"resolved_by":"majority"', expected: "majority" },
  ])("resolved_by $name parses as $expected", ({ extra, expected }) => {
    const event = eventFrom(
      `{"type":"consensus_calculated","step_id":"s","agreement":0.5,"metric":"m"${extra},"calculated_at":"2024-03-01T10:15:30Z"}`,
    );
    expect(event.type === "consensus_calculated" && event.resolved_by).toBe(expected);
  });

  it("reads serde_json's 1.0 for an f64 as the number 1", () => {
    const event = eventFrom(
      '{"type":"consensus_calculated","step_id":"s","agreement":1.0,"metric":"m","resolved_by":null,"calculated_at":"2024-03-01T10:15:30Z"}',
    );
    expect(event.type === "consensus_calculated" && event.agreement).toBe(1);
  });

  it("accepts result: null, which serde_json::Value allows", () => {
    const event = eventFrom(
      '{"type":"step_completed","step_id":"s","result":null,"completed_at":"2024-03-01T10:15:30Z"}',
    );
    expect(event.type === "step_completed" && event.result).toBeNull();
  });

  const STORED_JSON = `{"event_id":"${EVENT_ID}","stream_id":"${WORKFLOW_ID}","stream_type":"workflow","version":1,"event":{"type":"workflow_started","workflow_id":"${WORKFLOW_ID}","config_version":"2024.03.1","started_at":"2024-03-01T10:15:30.123456Z"},"metadata":{"actor":"${ALICE}","correlation_id":null,"tags":["import"]},"occurred_at":"2024-03-01T10:15:30.123456789Z"}`;

  it("parses a full StoredEvent and writes it back byte for byte with exactly the seed's fields", () => {
    const stored = StoredEvent.parse(JSON.parse(STORED_JSON));
    expect(stored).toEqual({
      event_id: EVENT_ID,
      stream_id: WORKFLOW_ID,
      stream_type: "workflow",
      version: 1,
      event: {
        type: "workflow_started",
        workflow_id: WORKFLOW_ID,
        config_version: "2024.03.1",
        started_at: "2024-03-01T10:15:30.123456Z",
      },
      metadata: { actor: ALICE, correlation_id: null, tags: ["import"] },
      occurred_at: "2024-03-01T10:15:30.123456789Z",
    });
    const written = JSON.stringify(stored);
    expect(written).toBe(STORED_JSON);
    expect(keysOf(JSON.parse(written))).toEqual([...STORED_EVENT_FIELDS]);
    expect(StoredEvent.parse(JSON.parse(written))).toEqual(stored);
  });

  it("normalises UUIDs and timestamps inside a StoredEvent, including its nested event", () => {
    const stored = StoredEvent.parse({
      event_id: EVENT_ID.toUpperCase(),
      stream_id: WORKFLOW_ID.toUpperCase(),
      stream_type: "workflow",
      version: 42,
      event: {
        type: "step_activated",
        step_id: "review",
        assigned_to: [BOB.toUpperCase()],
        activated_at: "2024-03-01T11:15:30.25+01:00",
      },
      metadata: null,
      occurred_at: "2024-03-01T05:15:30-05:00",
      global_position: 9001,
    });
    expect(stored).toEqual({
      event_id: EVENT_ID,
      stream_id: WORKFLOW_ID,
      stream_type: "workflow",
      version: 42,
      event: {
        type: "step_activated",
        step_id: "review",
        assigned_to: [BOB],
        activated_at: "2024-03-01T10:15:30.25Z",
      },
      metadata: null,
      occurred_at: "2024-03-01T10:15:30Z",
      global_position: 9001,
    });
  });
});

describe("refusals name the offending field", () => {
  type Case = { name: string; input: () => unknown; path: PropertyKey[]; message: string };

  const CASES: Case[] = [
    {
      name: "retries as a string",
      input: () => ({ ...sample("step_failed"), retries: "3" }),
      path: ["retries"],
      message: "expected an integer from 0 to 255",
    },
    {
      name: "retries 256 (above u8)",
      input: () => ({ ...sample("step_failed"), retries: 256 }),
      path: ["retries"],
      message: "expected an integer from 0 to 255 (a u8)",
    },
    {
      name: "retries -1 (below u8)",
      input: () => ({ ...sample("step_failed"), retries: -1 }),
      path: ["retries"],
      message: "expected an integer from 0 to 255 (a u8)",
    },
    {
      name: "retries 1.5 (not an integer)",
      input: () => ({ ...sample("step_failed"), retries: 1.5 }),
      path: ["retries"],
      message: "expected an integer from 0 to 255",
    },
    {
      name: "agreement as a string",
      input: () => ({ ...sample("consensus_calculated"), agreement: "0.9" }),
      path: ["agreement"],
      message: "expected a finite number",
    },
    {
      name: "agreement Infinity (a JS value; JSON cannot carry it)",
      input: () => ({ ...sample("consensus_calculated"), agreement: Number.POSITIVE_INFINITY }),
      path: ["agreement"],
      message: "expected a finite number",
    },
    {
      name: "agreement -Infinity",
      input: () => ({ ...sample("consensus_calculated"), agreement: Number.NEGATIVE_INFINITY }),
      path: ["agreement"],
      message: "expected a finite number",
    },
    {
      name: "agreement NaN",
      input: () => ({ ...sample("consensus_calculated"), agreement: Number.NaN }),
      path: ["agreement"],
      message: "expected a finite number",
    },
    {
      name: "agreement 1e999, which JSON.parse turns into Infinity and serde_json refuses",
      input: () =>
        JSON.parse(
          '{"type":"consensus_calculated","step_id":"s","agreement":1e999,"metric":"m","resolved_by":null,"calculated_at":"2024-03-01T10:15:30Z"}',
        ),
      path: ["agreement"],
      message: "expected a finite number",
    },
    {
      name: 'recoverable as "yes"',
      input: () => ({ ...sample("workflow_failed"), recoverable: "yes" }),
      path: ["recoverable"],
      message: "expected true or false",
    },
    {
      name: "condition_met as a number",
      input: () => ({ ...sample("transition_occurred"), condition_met: 42 }),
      path: ["condition_met"],
      message: "expected a string or null",
    },
    {
      name: "resolved_by as a boolean",
      input: () => ({ ...sample("consensus_calculated"), resolved_by: false }),
      path: ["resolved_by"],
      message: "expected a string or null",
    },
    {
      name: "step_id missing",
      input: () => without(sample("step_completed"), "step_id"),
      path: ["step_id"],
      message: "expected a string",
    },
    {
      name: "started_at missing",
      input: () => without(sample("workflow_started"), "started_at"),
      path: ["started_at"],
      message: "expected an RFC 3339 timestamp string",
    },
    {
      name: "result missing entirely (result: null is allowed)",
      input: () => without(sample("step_completed"), "result"),
      path: ["result"],
      message: "",
    },
    {
      name: "context_updated value missing",
      input: () => without(sample("context_updated"), "value"),
      path: ["value"],
      message: "",
    },
    {
      name: "final_output missing",
      input: () => without(sample("workflow_completed"), "final_output"),
      path: ["final_output"],
      message: "",
    },
    {
      name: 'unknown tag "step_exploded"',
      input: () => ({ ...sample("step_failed"), type: "step_exploded" }),
      path: ["type"],
      message: 'expected "type" to be one of workflow_started, step_activated',
    },
    {
      name: "missing tag",
      input: () => without(sample("step_failed"), "type"),
      path: ["type"],
      message: 'expected "type" to be one of',
    },
    {
      name: "tag as a number",
      input: () => ({ ...sample("step_failed"), type: 3 }),
      path: ["type"],
      message: 'expected "type" to be one of',
    },
    {
      name: "tag in PascalCase (the Rust variant name, not the serde tag)",
      input: () => ({ ...sample("step_failed"), type: "StepFailed" }),
      path: ["type"],
      message: 'expected "type" to be one of',
    },
    {
      name: "a non-UUID in assigned_to",
      input: () => ({ ...sample("step_activated"), assigned_to: [ALICE, "bob"] }),
      path: ["assigned_to", 1],
      message: "expected a hyphenated UUID",
    },
    {
      name: "assigned_to as a single UUID instead of an array",
      input: () => ({ ...sample("step_activated"), assigned_to: ALICE }),
      path: ["assigned_to"],
      message: "expected an array of UUIDs",
    },
    {
      name: "a non-UUID workflow_id",
      input: () => ({ ...sample("workflow_started"), workflow_id: "workflow-1" }),
      path: ["workflow_id"],
      message: "expected a hyphenated UUID",
    },
    {
      name: "failed_at 2024-02-30 (no such day)",
      input: () => ({ ...sample("step_failed"), failed_at: "2024-02-30T00:00:00Z" }),
      path: ["failed_at"],
      message: 'expected an RFC 3339 timestamp such as 2026-01-31T12:00:00Z, got "2024-02-30T00:00:00Z"',
    },
    {
      name: "started_at 2023-02-29 (not a leap year)",
      input: () => ({ ...sample("workflow_started"), started_at: "2023-02-29T00:00:00Z" }),
      path: ["started_at"],
      message: 'got "2023-02-29T00:00:00Z"',
    },
    {
      name: 'started_at "yesterday"',
      input: () => ({ ...sample("workflow_started"), started_at: "yesterday" }),
      path: ["started_at"],
      message: 'got "yesterday"',
    },
    {
      name: "occurred_at without a zone",
      input: () => ({ ...sample("transition_occurred"), occurred_at: "2024-03-01 10:15:30" }),
      path: ["occurred_at"],
      message: 'got "2024-03-01 10:15:30"',
    },
    {
      name: "skipped_at with T but without a zone",
      input: () => ({ ...sample("step_skipped"), skipped_at: "2024-03-01T10:15:30" }),
      path: ["skipped_at"],
      message: 'got "2024-03-01T10:15:30"',
    },
    {
      name: "updated_at at hour 24",
      input: () => ({ ...sample("context_updated"), updated_at: "2024-03-01T24:00:00Z" }),
      path: ["updated_at"],
      message: 'got "2024-03-01T24:00:00Z"',
    },
    {
      name: "completed_at in month 13",
      input: () => ({ ...sample("workflow_completed"), completed_at: "2024-13-01T00:00:00Z" }),
      path: ["completed_at"],
      message: 'got "2024-13-01T00:00:00Z"',
    },
    {
      name: "calculated_at as epoch seconds",
      input: () => ({ ...sample("consensus_calculated"), calculated_at: 1709288130 }),
      path: ["calculated_at"],
      message: "expected an RFC 3339 timestamp string",
    },
    {
      name: "a timestamp whose UTC instant falls before year 0 (refused rather than mangled)",
      input: () => ({ ...sample("workflow_started"), started_at: "0000-01-01T00:00:00+01:00" }),
      path: ["started_at"],
      message: 'got "0000-01-01T00:00:00+01:00"',
    },
    {
      name: "a timestamp whose UTC instant falls after year 9999 (refused rather than mangled)",
      input: () => ({ ...sample("workflow_started"), started_at: "9999-12-31T23:00:00-02:00" }),
      path: ["started_at"],
      message: 'got "9999-12-31T23:00:00-02:00"',
    },
    {
      name: "null instead of an event",
      input: () => null,
      path: [],
      message: 'expected "type" to be one of',
    },
  ];

  it.each(CASES)("$name", ({ input, path, message }) => {
    const { paths, text } = refuse(WorkflowEvent, input());
    expect(paths).toEqual([path]);
    const label = path.length === 0 ? "(root)" : path.map(String).join(".");
    expect(text.startsWith(`${label}: `)).toBe(true);
    expect(text).toContain(message);
  });

  it("reports every offending field at once, each by path", () => {
    const { paths, text } = refuse(WorkflowEvent, {
      type: "step_failed",
      error: 7,
      retries: 256,
      failed_at: "yesterday",
    });
    expect(paths).toEqual([["step_id"], ["error"], ["retries"], ["failed_at"]]);
    expect(text.split("; ").map((part) => part.slice(0, part.indexOf(":")))).toEqual([
      "step_id",
      "error",
      "retries",
      "failed_at",
    ]);
  });

  const storedBase = (): Record<string, unknown> => ({
    event_id: EVENT_ID,
    stream_id: WORKFLOW_ID,
    stream_type: "workflow",
    version: 1,
    event: sample("workflow_failed"),
    metadata: {},
    occurred_at: "2024-03-01T10:15:30Z",
  });

  const STORED_CASES: Case[] = [
    {
      name: "version 0 (versions are 1-based)",
      input: () => ({ ...storedBase(), version: 0 }),
      path: ["version"],
      message: "versions start at 1",
    },
    {
      name: "version -1",
      input: () => ({ ...storedBase(), version: -1 }),
      path: ["version"],
      message: "versions start at 1",
    },
    {
      name: "version 1.5",
      input: () => ({ ...storedBase(), version: 1.5 }),
      path: ["version"],
      message: "expected a positive integer version",
    },
    {
      name: 'version "1"',
      input: () => ({ ...storedBase(), version: "1" }),
      path: ["version"],
      message: "expected a positive integer version",
    },
    {
      name: "event_id missing",
      input: () => without(storedBase(), "event_id"),
      path: ["event_id"],
      message: "expected a UUID string",
    },
    {
      name: "stream_id not a UUID",
      input: () => ({ ...storedBase(), stream_id: "stream-7" }),
      path: ["stream_id"],
      message: "expected a hyphenated UUID",
    },
    {
      name: "metadata missing (serde_json::Value is required)",
      input: () => without(storedBase(), "metadata"),
      path: ["metadata"],
      message: "",
    },
    {
      name: "occurred_at invalid",
      input: () => ({ ...storedBase(), occurred_at: "2024-02-30T00:00:00Z" }),
      path: ["occurred_at"],
      message: 'got "2024-02-30T00:00:00Z"',
    },
    {
      name: "an unknown tag in the nested event",
      input: () => ({ ...storedBase(), event: { ...sample("step_failed"), type: "step_exploded" } }),
      path: ["event", "type"],
      message: 'expected "type" to be one of',
    },
    {
      name: "a bad field in the nested event",
      input: () => ({ ...storedBase(), event: { ...sample("step_activated"), assigned_to: [ALICE, "x"] } }),
      path: ["event", "assigned_to", 1],
      message: "expected a hyphenated UUID",
    },
  ];

  it.each(STORED_CASES)("StoredEvent: $name", ({ input, path, message }) => {
    const { paths, text } = refuse(StoredEvent, input());
    expect(paths).toEqual([path]);
    expect(text.startsWith(`${path.map(String).join(".")}: `)).toBe(true);
    expect(text).toContain(message);
  });

  it("StoredEvent base sample used by the refusal cases is itself valid", () => {
    expect(StoredEvent.parse(storedBase()).version).toBe(1);
  });
});
