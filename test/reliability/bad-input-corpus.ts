import fc from "fast-check";
import { TEST_TOKENS } from "../support/test-tokens";
import { signWebhook } from "../support/webhook-signing";
import { type Random, WEBHOOK_TEST_SECRETS } from "./support";

// The generated corpus of malformed requests for part 3. Every route gets its own list
// of mutations of a valid request (broken JSON, wrong types, huge numbers, deep nesting,
// oversize bodies, invalid UUIDs, invalid event sequences, bad headers and tokens, bad
// webhook signatures), and the corpus walks those lists in turn, drawing the details
// (where to cut, which wrong value, which junk) from the seeded generator and from
// fast-check samples with a seed taken from it. So one seed gives one corpus (stream
// and event ids aside, which are fresh on every run so runs never collide).
//
// Each case says what it may do: "refuse" (must be answered 4xx and write nothing),
// "accept" (a valid control: must succeed), or "either" (the mutation leaves the request
// valid on some streams or in some orders, such as expected_version -0 or an extra
// unknown field): whatever such a case writes is counted, and only those writes are allowed.

export type Expectation = "refuse" | "accept" | "either";

export interface Case {
  id: number;
  route: string;
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Sent without Content-Length, in chunks (the body limit must count bytes as they arrive). */
  chunked?: boolean;
  /** A WebSocket upgrade request. */
  upgrade?: boolean;
  expect: Expectation;
  /** The stream this request could write to. */
  target?: string;
  /** A stream no other case touches. */
  fresh?: boolean;
  /** Headers made when the request is sent (webhook signatures carry the current time). */
  late?: () => Promise<Record<string, string>>;
}

/** Streams the corpus shares, prepared by the test before the corpus runs. */
export interface CorpusStreams {
  /** A running workflow; `version` is where it stood before the corpus. */
  running: { id: string; version: number; eventIds: string[]; firstBody: string };
  /** A completed workflow: every event is refused. */
  completed: string;
  /**
   * A stream with history that only the watch cases use. A watcher that leaves while its
   * history is being sent makes the actor drop its database pool (see docs/reliability.md,
   * "Known issues"), which answers reads in flight on that stream with 503; the watch cases
   * keep to a stream of their own so that this cannot touch the other cases.
   */
  watched: string;
  /** An unrecoverably failed workflow: every event is refused. */
  failed: string;
}

type Draft = Omit<Case, "id" | "route" | "kind">;
type Mutation = readonly [kind: string, make: (ctx: Ctx) => Draft];

interface Ctx {
  rng: Random;
  streams: CorpusStreams;
  junk: Junk;
}

/** fast-check samples, drawn once per corpus with a seed from the corpus's generator. */
interface Junk {
  json: string[];
  values: unknown[];
  strings: string[];
  bytes: Uint8Array[];
}

const AT = "2026-03-01T10:00:00Z";
const admin = `Bearer ${TEST_TOKENS.admin}`;
const JSON_HEADERS = { "content-type": "application/json", authorization: admin };
const MAX_BODY_BYTES = 1024 * 1024;

const uuid = () => crypto.randomUUID();
const text = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value));

// --- valid material ----------------------------------------------------------------

const startedEvent = () => ({
  type: "workflow_started",
  workflow_id: uuid(),
  config_version: "v1",
  started_at: AT,
});
const contextEvent = (key = "k", value: unknown = 1) => ({
  type: "context_updated",
  key,
  value,
  updated_at: AT,
});
const stepActivated = (step: string) => ({
  type: "step_activated",
  step_id: step,
  assigned_to: [],
  activated_at: AT,
});
const stepCompleted = (step: string) => ({
  type: "step_completed",
  step_id: step,
  result: null,
  completed_at: AT,
});

/** A valid first append for a new stream. */
const newStreamBody = (extra: Record<string, unknown> = {}) => ({
  events: [{ event: startedEvent() }, { event: contextEvent() }],
  ...extra,
});

// --- helpers that make one case ----------------------------------------------------

/** An append to a stream only this case touches. */
function appendFresh(
  body: Buffer,
  expect: Expectation,
  headers: Record<string, string | string[]> = JSON_HEADERS,
): Draft {
  const target = uuid();
  return { method: "POST", path: `/streams/${target}/events`, headers, body, expect, target, fresh: true };
}

/** An append to one of the shared streams. */
function appendTo(
  target: string,
  body: Buffer,
  expect: Expectation,
  headers: Record<string, string | string[]> = JSON_HEADERS,
): Draft {
  return { method: "POST", path: `/streams/${target}/events`, headers, body, expect, target };
}

/** A valid new-stream body with the value at `path` replaced (a wrong type, a bad format, a huge number). */
function withValue(path: readonly (string | number)[], value: unknown): Record<string, unknown> {
  const body = newStreamBody() as Record<string, unknown>;
  let node: Record<string | number, unknown> = body;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last === undefined) throw new Error("empty path");
  if (value === REMOVE) delete node[last];
  else node[last] = value;
  return body;
}
const REMOVE = Symbol("remove");

/** JSON text of `body` with the marker string replaced by raw JSON text (for numbers JSON.stringify cannot write). */
function rawJson(body: unknown, raw: string): Buffer {
  return text(JSON.stringify(body).replace('"@RAW@"', raw));
}

function nested(depth: number, leaf: string = "1"): string {
  return `${"[".repeat(depth)}${leaf}${"]".repeat(depth)}`;
}
function nestedObject(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
}

const BAD_STREAM_IDS = [
  "not-a-uuid",
  "0b8f1d2e3c4a4b5c8d6e7f8091a2b3c4",
  "{0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4}",
  "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c40",
  "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c",
  "zb8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4",
  "urn%3Auuid%3A0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4",
  "%00",
  "%2e%2e",
  "%C3%BC",
  "%ff%fe",
  "1",
  "-1",
  "null",
  "a".repeat(3000),
] as const;
/**
 * The same, less "%2e%2e": URLs are normalised, so /streams/%2e%2e/events is GET /events
 * (the global feed) and /streams/%2e%2e/watch is GET /watch, both served, not refused.
 */
const BAD_STREAM_IDS_NO_DOTS = BAD_STREAM_IDS.filter((id) => id !== "%2e%2e");

const BAD_TOKENS: ReadonlyArray<readonly [string, string | string[] | undefined]> = [
  ["missing", undefined],
  ["empty", ""],
  ["scheme only", "Bearer"],
  ["scheme and space", "Bearer "],
  ["too short", "Bearer abc"],
  ["lower-case scheme", `bearer ${TEST_TOKENS.admin}`],
  ["two spaces", `Bearer  ${TEST_TOKENS.admin}`],
  ["basic", `Basic ${Buffer.from(`admin:${TEST_TOKENS.admin}`).toString("base64")}`],
  ["unknown token", `Bearer ${TEST_TOKENS.admin}x`],
  ["token with a space", `Bearer ${TEST_TOKENS.admin} x`],
  ["token of 600 chars", `Bearer ${"a".repeat(600)}`],
  ["two authorization headers", [admin, `Bearer ${TEST_TOKENS.reader}`]],
  ["latin-1 token", `Bearer ${"\u00e9".repeat(20)}`],
];

const ROUTES: ReadonlyArray<{ route: string; weight: number; mutations: readonly Mutation[] }> = [
  {
    route: "POST /streams/:id/events",
    weight: 40,
    mutations: [
      // Broken JSON.
      [
        "json: cut short",
        ({ rng }) => {
          const full = JSON.stringify(newStreamBody());
          return appendFresh(text(full.slice(0, rng.int(1, full.length - 1))), "refuse");
        },
      ],
      ["json: random bytes", ({ rng, junk }) => appendFresh(Buffer.from(rng.pick(junk.bytes)), "refuse")],
      ["json: a random JSON document", ({ rng, junk }) => appendFresh(text(rng.pick(junk.json)), "refuse")],
      [
        "json: trailing comma",
        () => appendFresh(text(JSON.stringify(newStreamBody()).replace(/}$/, ",}")), "refuse"),
      ],
      [
        "json: single quotes",
        () => appendFresh(text(JSON.stringify(newStreamBody()).replaceAll('"', "'")), "refuse"),
      ],
      [
        "json: unquoted keys",
        () => appendFresh(text(JSON.stringify(newStreamBody()).replace(/"(\w+)":/g, "$1:")), "refuse"),
      ],
      ["json: NaN", () => appendFresh(rawJson(withValue(["expected_version"], "@RAW@"), "NaN"), "refuse")],
      ["json: comment", () => appendFresh(text(`/* c */${JSON.stringify(newStreamBody())}`), "refuse")],
      ["json: two documents", () => appendFresh(text(JSON.stringify(newStreamBody()).repeat(2)), "refuse")],
      ["json: empty body", () => appendFresh(Buffer.alloc(0), "refuse")],
      ["json: whitespace only", () => appendFresh(text(" \n\t "), "refuse")],
      [
        "json: scalar or array document",
        ({ rng }) =>
          appendFresh(
            text(rng.pick(["null", "[]", "true", "1", '"events"', "1e400", "{}", "[{}]"])),
            "refuse",
          ),
      ],
      ["json: byte order mark only", () => appendFresh(Buffer.from([0xef, 0xbb, 0xbf]), "refuse")],
      [
        "json: byte order mark then a valid body",
        () => appendFresh(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text(newStreamBody())]), "either"),
      ],
      [
        "json: invalid UTF-8 inside a string",
        () => {
          const [head, tail] = JSON.stringify(newStreamBody()).split('"v1"');
          return appendFresh(
            Buffer.concat([text(`${head}"v`), Buffer.from([0xff, 0xfe, 0xc3]), text(`"${tail}`)]),
            "either",
          );
        },
      ],
      [
        "json: lone surrogate escape",
        () =>
          appendFresh(rawJson(withValue(["events", 1, "event", "value"], "@RAW@"), '"\\ud800"'), "refuse"),
      ],
      [
        "json: U+0000 in a value",
        () => appendFresh(text(withValue(["events", 1, "event", "value"], "a\u0000b")), "refuse"),
      ],
      [
        "json: U+0000 in a key",
        () => appendFresh(text(withValue(["events", 1, "event", "value"], { "a\u0000": 1 })), "refuse"),
      ],
      [
        "json: U+0000 in metadata",
        () => appendFresh(text(withValue(["events", 0, "metadata"], { note: "\u0000" })), "refuse"),
      ],
      // Wrong types and formats, field by field.
      [
        "type: events",
        ({ rng }) =>
          appendFresh(text(withValue(["events"], rng.pick([null, {}, "x", 1, [], true]))), "refuse"),
      ],
      [
        "type: an event item",
        ({ rng }) => appendFresh(text(withValue(["events", 1], rng.pick([null, "x", 1, [], {}]))), "refuse"),
      ],
      [
        "type: event",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["events", 0, "event"],
                rng.pick([null, "x", [], {}, { type: "nope" }, { type: 1 }, { type: "workflow_started" }]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "type: event type",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["events", 0, "event", "type"],
                rng.pick(["Workflow_Started", "", null, 5, "workflow-started", " workflow_started", REMOVE]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "type: workflow_id",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["events", 0, "event", "workflow_id"],
                rng.pick([
                  "not-a-uuid",
                  "",
                  1,
                  null,
                  "0b8f1d2e3c4a4b5c8d6e7f8091a2b3c4",
                  `${uuid()}0`,
                  `{${uuid()}}`,
                  REMOVE,
                ]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "type: config_version",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(["events", 0, "event", "config_version"], rng.pick([1, null, [], {}, true, REMOVE])),
            ),
            "refuse",
          ),
      ],
      [
        "format: timestamp",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["events", 0, "event", "started_at"],
                rng.pick([
                  "2026-13-01T00:00:00Z",
                  "2026-02-30T00:00:00Z",
                  "2026-03-01T25:00:00Z",
                  "2026-03-01T10:60:00Z",
                  "yesterday",
                  1772359200,
                  "2026-03-01 10:00",
                  "",
                  null,
                  "0000-01-01T00:00:00+01:00",
                  "9999-12-31T23:59:59-01:00",
                  "2026-03-01T10:00:00",
                  "2026-03-01T10:00:00.1234567890Z",
                  "+002026-03-01T10:00:00Z",
                ]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "type: context key",
        ({ rng }) =>
          appendFresh(
            text(withValue(["events", 1, "event", "key"], rng.pick(["", 1, null, [], REMOVE]))),
            "refuse",
          ),
      ],
      [
        "type: context value missing",
        () => appendFresh(text(withValue(["events", 1, "event", "value"], REMOVE)), "refuse"),
      ],
      [
        "type: a random JSON value for a field",
        ({ rng, junk }) => {
          const field = rng.pick([
            ["events"],
            ["events", 0, "event"],
            ["events", 0, "event", "workflow_id"],
            ["events", 0, "event_id"],
            ["expected_version"],
            ["stream_type"],
          ] as const);
          const value = rng.pick(junk.values);
          // A random value is almost never valid in place, but for these two it can be: then it may write.
          const name = field[field.length - 1];
          const couldBeValid =
            (name === "expected_version" &&
              (typeof value === "number" || ["any", "no_stream", "stream_exists"].includes(String(value)))) ||
            (name === "stream_type" && typeof value === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(value));
          return appendFresh(text(withValue(field, value)), couldBeValid ? "either" : "refuse");
        },
      ],
      [
        "format: event_id",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["events", 0, "event_id"],
                rng.pick([
                  "x",
                  "",
                  1,
                  null,
                  `{${uuid()}}`,
                  `urn:uuid:${uuid()}`,
                  "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
                  uuid().replaceAll("-", ""),
                  `${uuid()} `,
                ]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "event_id: the same id twice in one append",
        () => {
          const id = uuid();
          const body = newStreamBody();
          return appendFresh(
            text({ events: body.events.map((item) => ({ ...item, event_id: id })) }),
            "refuse",
          );
        },
      ],
      [
        "format: stream_type",
        ({ rng }) =>
          appendFresh(
            text(withValue(["stream_type"], rng.pick(["", "a b", "x".repeat(65), 5, null, "ü", "a/b", []]))),
            "refuse",
          ),
      ],
      [
        "extra unknown fields",
        ({ rng }) => {
          const key = rng.pick(["foo", "__proto__", "constructor", "events_"]);
          return appendFresh(
            text(JSON.stringify(newStreamBody()).replace(/^{/, `{"${key}":{"x":1},`)),
            "either",
          );
        },
      ],
      // Huge and odd numbers.
      [
        "number: expected_version",
        ({ rng }) =>
          appendFresh(
            rawJson(
              withValue(["expected_version"], "@RAW@"),
              rng.pick([
                "1e400",
                "-1e400",
                "18446744073709551616",
                "9007199254740992",
                "-1",
                "1.5",
                "0.0000001",
                "9007199254740991",
              ]),
            ),
            "refuse",
          ),
      ],
      [
        "number: expected_version that reads as 0 (-0, 0.0, 1e-400)",
        ({ rng }) =>
          appendFresh(
            rawJson(
              withValue(["expected_version"], "@RAW@"),
              rng.pick(["-0", "0.0", "0e5", "-0.0", "1e-400"]),
            ),
            "either",
          ),
      ],
      [
        "type: expected_version",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["expected_version"],
                rng.pick(["1", "latest", "ANY", null, true, {}, [], "no-stream", ""]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "type: if (the condition on the state)",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["if"],
                rng.pick([
                  null,
                  {},
                  [],
                  "running",
                  { status: "active" },
                  { step: "s", status: "active" },
                  { current_step: "" },
                  { current_step: 7 },
                  { steps: { s: "done" } },
                  { steps: [] },
                  { context: { k: 1 }, extra: true },
                  { steps: {}, context: {} },
                ]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "condition: an if a new stream does not meet (412)",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["if"],
                rng.pick([
                  { status: "running" },
                  { current_step: "s" },
                  { steps: { s: "active" } },
                  { context: { k: null } },
                  // An own "__proto__" key: a step of that name, which a new stream lacks.
                  { status: "pending", steps: JSON.parse('{"__proto__":"active"}') },
                ]),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "number: a context value of 1e400",
        () => appendFresh(rawJson(withValue(["events", 1, "event", "value"], "@RAW@"), "1e400"), "refuse"),
      ],
      [
        "number: huge but finite values",
        ({ rng }) =>
          appendFresh(
            rawJson(
              withValue(["events", 1, "event", "value"], "@RAW@"),
              rng.pick(["-0", "18446744073709551616", "1e308", "5e-324", "123456789012345678901234567890"]),
            ),
            "either",
          ),
      ],
      [
        "number: step_failed retries",
        ({ rng }) => {
          const retries = rng.pick(["256", "-1", "1.5", "1e400", "255.0000001", '"3"', "null"]);
          const body = {
            events: [
              { event: startedEvent() },
              { event: stepActivated("s") },
              { event: { type: "step_failed", step_id: "s", error: "e", retries: "@RAW@", failed_at: AT } },
            ],
          };
          return appendFresh(rawJson(body, retries), "refuse");
        },
      ],
      [
        "number: consensus agreement",
        ({ rng }) => {
          const agreement = rng.pick(["1e400", "-1e400", '"0.5"', "null", "[]"]);
          const body = {
            events: [
              { event: startedEvent() },
              { event: stepActivated("s") },
              {
                event: {
                  type: "consensus_calculated",
                  step_id: "s",
                  agreement: "@RAW@",
                  metric: "m",
                  resolved_by: null,
                  calculated_at: AT,
                },
              },
            ],
          };
          return appendFresh(rawJson(body, agreement), "refuse");
        },
      ],
      // Depth.
      [
        "depth: a value nested 65 to 100000 levels",
        ({ rng }) =>
          appendFresh(
            rawJson(
              withValue(["events", 1, "event", "value"], "@RAW@"),
              rng.pick([nested(65), nested(5000), nestedObject(2000), nested(100_000)]),
            ),
            "refuse",
          ),
      ],
      [
        "depth: metadata nested 65 to 100000 levels",
        ({ rng }) =>
          appendFresh(
            rawJson(
              withValue(["events", 0, "metadata"], "@RAW@"),
              rng.pick([nested(65), nested(5000), nestedObject(5000), nested(100_000), nested(520_000)]),
            ),
            "refuse",
          ),
      ],
      [
        "depth: a document nested 100000 levels",
        ({ rng }) =>
          appendFresh(text(rng.pick([nested(100_000), nestedObject(50_000), nested(520_000)])), "refuse"),
      ],
      // Sizes.
      [
        "size: metadata over 16 KiB",
        () =>
          appendFresh(text(withValue(["events", 0, "metadata"], { pad: "x".repeat(17 * 1024) })), "refuse"),
      ],
      [
        "size: 501 events",
        () =>
          appendFresh(
            text({
              events: [
                { event: startedEvent() },
                ...Array.from({ length: 500 }, (_, i) => ({ event: contextEvent(`k${i}`, i) })),
              ],
            }),
            "refuse",
          ),
      ],
      [
        "size: body over 1 MiB",
        ({ rng }) =>
          appendFresh(
            text(
              withValue(
                ["events", 1, "event", "value"],
                "x".repeat(MAX_BODY_BYTES + rng.int(1, 1024 * 1024)),
              ),
            ),
            "refuse",
          ),
      ],
      [
        "size: body over 1 MiB, chunked without Content-Length",
        () => ({
          ...appendFresh(
            text(withValue(["events", 1, "event", "value"], "x".repeat(MAX_BODY_BYTES + 10))),
            "refuse",
          ),
          chunked: true,
        }),
      ],
      // Invalid event sequences (valid JSON and schema, refused by the workflow rules).
      [
        "sequence: first event is not workflow_started",
        ({ rng }) =>
          appendFresh(
            text({
              events: [
                {
                  event: rng.pick([
                    contextEvent(),
                    stepCompleted("s"),
                    { type: "workflow_completed", final_output: null, completed_at: AT },
                    stepActivated("s"),
                  ]),
                },
              ],
            }),
            "refuse",
          ),
      ],
      [
        "sequence: started twice",
        () => appendFresh(text({ events: [{ event: startedEvent() }, { event: startedEvent() }] }), "refuse"),
      ],
      [
        "sequence: valid events then one the rules refuse",
        ({ rng }) =>
          appendFresh(
            text({
              events: [
                { event: startedEvent() },
                { event: contextEvent() },
                {
                  event: rng.pick([
                    stepCompleted("never"),
                    {
                      type: "transition_occurred",
                      from_step: "nope",
                      to_step: "x",
                      condition_met: null,
                      occurred_at: AT,
                    },
                  ]),
                },
              ],
            }),
            "refuse",
          ),
      ],
      [
        "sequence: event after the workflow completed",
        () =>
          appendFresh(
            text({
              events: [
                { event: startedEvent() },
                { event: { type: "workflow_completed", final_output: 1, completed_at: AT } },
                { event: contextEvent() },
              ],
            }),
            "refuse",
          ),
      ],
      [
        "sequence: started on a running stream",
        ({ streams }) =>
          appendTo(streams.running.id, text({ events: [{ event: startedEvent() }] }), "refuse"),
      ],
      [
        "sequence: a never-activated step on a running stream",
        ({ streams, rng }) =>
          appendTo(
            streams.running.id,
            text({
              events: [
                { event: contextEvent() },
                {
                  event: rng.pick([
                    stepCompleted(`never-${uuid()}`),
                    {
                      type: "step_failed",
                      step_id: `never-${uuid()}`,
                      error: "e",
                      retries: 0,
                      failed_at: AT,
                    },
                    {
                      type: "consensus_calculated",
                      step_id: `never-${uuid()}`,
                      agreement: 1,
                      metric: "m",
                      resolved_by: null,
                      calculated_at: AT,
                    },
                  ]),
                },
              ],
            }),
            "refuse",
          ),
      ],
      [
        "sequence: any event on a completed stream",
        ({ streams, rng }) =>
          appendTo(
            streams.completed,
            text({
              events: [
                {
                  event: rng.pick([
                    contextEvent(),
                    stepActivated(`s-${uuid()}`),
                    { type: "workflow_failed", error: "e", recoverable: true, failed_at: AT },
                  ]),
                },
              ],
            }),
            "refuse",
          ),
      ],
      [
        "sequence: any event on an unrecoverably failed stream",
        ({ streams, rng }) =>
          appendTo(
            streams.failed,
            text({ events: [{ event: rng.pick([contextEvent(), stepActivated(`s-${uuid()}`)]) }] }),
            "refuse",
          ),
      ],
      // Versions and ids that conflict.
      [
        "conflict: expected version on a running stream",
        ({ streams, rng }) =>
          appendTo(
            streams.running.id,
            text({
              expected_version: rng.pick([0, "no_stream", streams.running.version + 1000]),
              events: [{ event: contextEvent() }],
            }),
            "refuse",
          ),
      ],
      [
        "conflict: stream_exists or a version on a new stream",
        ({ rng }) =>
          appendFresh(
            text(newStreamBody({ expected_version: rng.pick(["stream_exists", 1, 5, 9007199254740991]) })),
            "refuse",
          ),
      ],
      [
        "conflict: an event id stored in another stream",
        ({ streams, rng }) =>
          appendFresh(
            text({ events: [{ event_id: rng.pick(streams.running.eventIds), event: startedEvent() }] }),
            "refuse",
          ),
      ],
      [
        "conflict: stored and new event ids mixed",
        ({ streams, rng }) =>
          appendTo(
            streams.running.id,
            text({
              events: [
                { event_id: uuid(), event: contextEvent() },
                { event_id: rng.pick(streams.running.eventIds), event: contextEvent() },
              ],
            }),
            "refuse",
          ),
      ],
      [
        "repeat: the running stream's first append, sent again",
        ({ streams }) => appendTo(streams.running.id, text(streams.running.firstBody), "accept"),
      ],
      // Headers.
      [
        "header: content-type",
        ({ rng }) =>
          appendFresh(
            text(newStreamBody()),
            "refuse",
            withHeader(
              "content-type",
              rng.pick([
                undefined,
                "",
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/jsonx",
                "json",
                "multipart/form-data; boundary=x",
                "application/json-patch+json",
                "text/json",
              ]),
            ),
          ),
      ],
      [
        "header: content-type variants that are JSON",
        ({ rng }) =>
          appendFresh(
            text(newStreamBody()),
            "either",
            withHeader(
              "content-type",
              rng.pick([
                "application/json; charset=utf-8",
                "Application/JSON",
                "application/json;charset=UTF-8",
                " application/json ",
              ]),
            ),
          ),
      ],
      [
        "header: authorization",
        ({ rng }) => {
          const [, value] = rng.pick(BAD_TOKENS);
          return appendFresh(text(newStreamBody()), "refuse", withHeader("authorization", value));
        },
      ],
      [
        "header: a token without the append scope",
        () =>
          appendFresh(
            text(newStreamBody()),
            "refuse",
            withHeader("authorization", `Bearer ${TEST_TOKENS.reader}`),
          ),
      ],
      [
        "header: a token limited to another stream",
        () =>
          appendFresh(
            text(newStreamBody()),
            "refuse",
            withHeader("authorization", `Bearer ${TEST_TOKENS.oneStream}`),
          ),
      ],
      [
        "header: a token limited to invoice streams, on a workflow stream",
        () =>
          appendFresh(
            text(newStreamBody()),
            "refuse",
            withHeader("authorization", `Bearer ${TEST_TOKENS.invoices}`),
          ),
      ],
      [
        "header: a token limited to invoice streams, on a new invoice stream",
        () =>
          appendFresh(
            text(newStreamBody({ stream_type: "invoice" })),
            "accept",
            withHeader("authorization", `Bearer ${TEST_TOKENS.invoices}`),
          ),
      ],
      [
        "header: If-Match malformed",
        ({ rng }) =>
          appendFresh(
            text(newStreamBody()),
            "refuse",
            withHeader(
              "if-match",
              rng.pick([
                "abc",
                'W/"0"',
                '"0.0"',
                '"-1"',
                '""',
                '"99999999999999999999"',
                "0",
                '"0", "1"',
                '"1e3"',
              ]),
            ),
          ),
      ],
      [
        "header: If-Match that conflicts",
        ({ rng }) =>
          appendFresh(text(newStreamBody()), "refuse", withHeader("if-match", rng.pick(["*", '"1"', '"7"']))),
      ],
      [
        "header: If-Match disagreeing with expected_version",
        () =>
          appendFresh(
            text(newStreamBody({ expected_version: "any" })),
            "refuse",
            withHeader("if-match", '"0"'),
          ),
      ],
      [
        'header: If-Match "0" on a new stream',
        () => appendFresh(text(newStreamBody()), "accept", withHeader("if-match", '"0"')),
      ],
      // URLs and methods.
      [
        "url: invalid stream id",
        ({ rng }) => ({
          method: "POST",
          path: `/streams/${rng.pick(BAD_STREAM_IDS)}/events`,
          headers: JSON_HEADERS,
          body: text(newStreamBody()),
          expect: "refuse",
        }),
      ],
      [
        "url: upper-case stream id",
        () => {
          const target = uuid();
          return {
            method: "POST",
            path: `/streams/${target.toUpperCase()}/events`,
            headers: JSON_HEADERS,
            body: text(newStreamBody()),
            expect: "either",
            target,
            fresh: true,
          };
        },
      ],
      [
        "url: a path beside the route",
        ({ rng }) => {
          const target = uuid();
          return {
            method: "POST",
            path: `/streams/${target}${rng.pick(["/events/", "/events/x", "/Events", "/events%2f", "//events", "/event"])}`,
            headers: JSON_HEADERS,
            body: text(newStreamBody()),
            expect: "refuse",
            target,
            fresh: true,
          };
        },
      ],
      [
        "method: not POST",
        ({ rng }) => {
          const target = uuid();
          return {
            method: rng.pick(["PUT", "PATCH", "DELETE"]),
            path: `/streams/${target}/events`,
            headers: JSON_HEADERS,
            body: text(newStreamBody()),
            expect: "refuse",
            target,
            fresh: true,
          };
        },
      ],
      // Controls: valid appends must still succeed next to all of the above.
      [
        "control: a valid first append",
        ({ rng }) =>
          appendFresh(
            text(newStreamBody(rng.chance(0.5) ? { expected_version: "no_stream" } : {})),
            "accept",
          ),
      ],
    ],
  },
  {
    route: "GET /streams/:id/events",
    weight: 10,
    mutations: [
      [
        "query: from",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/events?from=${rng.pick(["-1", "abc", "1e400", "18446744073709551616", "1.5", "", "0x10", "%201", "1000000000000000"])}`,
            "refuse",
          ),
      ],
      [
        "query: limit",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/events?limit=${rng.pick(["0", "1001", "-1", "1e3", "abc", "", "99999999999999999999"])}`,
            "refuse",
          ),
      ],
      [
        "query: direction",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/events?direction=${rng.pick(["sideways", "", "FORWARD", "back"])}`,
            "refuse",
          ),
      ],
      [
        "query: repeated or unknown parameters",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/events?${rng.pick(["from=1&from=2", "limit=5&limit=6", "foo=bar", "from[]=1", "%ff=%fe"])}`,
            "either",
          ),
      ],
      [
        "url: invalid stream id",
        ({ rng }) => get(`/streams/${rng.pick(BAD_STREAM_IDS_NO_DOTS)}/events`, "refuse"),
      ],
      [
        "header: authorization",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/events`,
            "refuse",
            withHeader("authorization", rng.pick(BAD_TOKENS)[1], {}),
          ),
      ],
      [
        "header: a token without the read scope",
        ({ streams }) =>
          get(`/streams/${streams.running.id}/events`, "refuse", {
            authorization: `Bearer ${TEST_TOKENS.appender}`,
          }),
      ],
      [
        "header: a token limited to another stream",
        ({ streams }) =>
          get(`/streams/${streams.running.id}/events`, "refuse", {
            authorization: `Bearer ${TEST_TOKENS.oneStream}`,
          }),
      ],
      [
        "header: a token limited to invoice streams",
        ({ streams }) =>
          get(`/streams/${streams.running.id}/events`, "refuse", {
            authorization: `Bearer ${TEST_TOKENS.invoices}`,
          }),
      ],
      [
        "method: not GET",
        ({ rng, streams }) => ({
          method: rng.pick(["PUT", "DELETE", "PATCH"]),
          path: `/streams/${streams.running.id}/events`,
          headers: { authorization: admin },
          expect: "refuse",
        }),
      ],
      [
        "control: a valid read",
        ({ rng, streams }) =>
          get(
            `/streams/${rng.chance(0.5) ? streams.running.id : uuid()}/events?limit=${rng.int(1, 1000)}&direction=${rng.pick(["forward", "backward"])}`,
            "accept",
          ),
      ],
    ],
  },
  {
    route: "GET /streams/:id",
    weight: 6,
    mutations: [
      ["url: invalid stream id", ({ rng }) => get(`/streams/${rng.pick(BAD_STREAM_IDS)}`, "refuse")],
      ["url: a stream without events", () => get(`/streams/${uuid()}`, "refuse")],
      [
        "header: authorization",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}`,
            "refuse",
            withHeader("authorization", rng.pick(BAD_TOKENS)[1], {}),
          ),
      ],
      [
        "method: not GET",
        ({ rng, streams }) => ({
          method: rng.pick(["POST", "PUT", "DELETE"]),
          path: `/streams/${streams.running.id}`,
          headers: JSON_HEADERS,
          body: text(newStreamBody()),
          expect: "refuse",
        }),
      ],
      [
        "control: a valid head",
        ({ rng, streams }) =>
          get(`/streams/${rng.pick([streams.running.id, streams.completed, streams.failed])}`, "accept"),
      ],
    ],
  },
  {
    route: "GET /streams/:id/state",
    weight: 6,
    mutations: [
      [
        "query: at",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/state?at=${rng.pick(["-1", "abc", "1e400", "18446744073709551616", "", "1.0", "999999999"])}`,
            "refuse",
          ),
      ],
      ["query: at 0", ({ streams }) => get(`/streams/${streams.running.id}/state?at=0`, "either")],
      ["url: invalid stream id", ({ rng }) => get(`/streams/${rng.pick(BAD_STREAM_IDS)}/state`, "refuse")],
      ["url: a stream without events", () => get(`/streams/${uuid()}/state`, "refuse")],
      [
        "header: authorization",
        ({ rng, streams }) =>
          get(
            `/streams/${streams.running.id}/state`,
            "refuse",
            withHeader("authorization", rng.pick(BAD_TOKENS)[1], {}),
          ),
      ],
      [
        "header: If-None-Match junk",
        ({ rng, streams }) =>
          get(`/streams/${streams.completed}/state`, "accept", {
            authorization: admin,
            "if-none-match": rng.pick(["*", '"x"', 'W/"2"', "", '"-1"']),
          }),
      ],
      [
        "method: not GET",
        ({ rng, streams }) => ({
          method: rng.pick(["POST", "PUT", "DELETE"]),
          path: `/streams/${streams.running.id}/state`,
          headers: JSON_HEADERS,
          body: text({}),
          expect: "refuse",
        }),
      ],
      [
        "control: a valid state",
        ({ rng, streams }) =>
          get(
            `/streams/${rng.pick([streams.running.id, streams.completed, streams.failed])}/state${rng.chance(0.5) ? "?at=1" : ""}`,
            "accept",
          ),
      ],
    ],
  },
  {
    route: "GET /streams/:id/watch",
    weight: 6,
    mutations: [
      ["upgrade: missing", ({ streams }) => get(`/streams/${streams.watched}/watch`, "refuse")],
      [
        "query: from",
        ({ rng, streams }) =>
          watch(
            `/streams/${streams.watched}/watch?from=${rng.pick(["-1", "abc", "1e400", "18446744073709551616", "1.5"])}`,
            "refuse",
          ),
      ],
      [
        "url: invalid stream id",
        ({ rng }) => watch(`/streams/${rng.pick(BAD_STREAM_IDS_NO_DOTS.slice(0, 10))}/watch`, "refuse"),
      ],
      [
        "header: authorization",
        ({ rng, streams }) =>
          watch(
            `/streams/${streams.watched}/watch`,
            "refuse",
            withHeader("authorization", rng.pick(BAD_TOKENS)[1], {}),
          ),
      ],
      [
        "header: subprotocol token",
        ({ rng, streams }) =>
          watch(`/streams/${streams.watched}/watch`, "refuse", {
            "sec-websocket-protocol": rng.pick([
              "bearer.short",
              `bearer.${TEST_TOKENS.admin}x`,
              "bearer.",
              `bearer.${"a".repeat(600)}`,
            ]),
          }),
      ],
      [
        "header: a token limited to invoice streams",
        ({ streams }) =>
          watch(`/streams/${streams.watched}/watch`, "either", {
            authorization: `Bearer ${TEST_TOKENS.invoices}`,
          }),
      ],
      [
        "method: not GET",
        ({ rng, streams }) => ({
          method: rng.pick(["POST", "PUT", "DELETE"]),
          path: `/streams/${streams.watched}/watch`,
          headers: { authorization: admin },
          expect: "refuse",
        }),
      ],
      [
        "control: a valid watch",
        ({ streams }) => watch(`/streams/${streams.watched}/watch?from=1`, "accept"),
      ],
    ],
  },
  {
    route: "GET /streams",
    weight: 6,
    mutations: [
      [
        "query: limit",
        ({ rng }) => get(`/streams?limit=${rng.pick(["0", "1001", "-1", "abc", "1e400", ""])}`, "refuse"),
      ],
      [
        "query: status",
        ({ rng }) =>
          get(`/streams?limit=1&status=${rng.pick(["bogus", "RUNNING", "", "running,failed"])}`, "refuse"),
      ],
      [
        "query: cursor",
        ({ rng }) =>
          get(
            `/streams?limit=1&cursor=${rng.pick(["not-a-uuid", "", "%00", "0b8f1d2e3c4a4b5c8d6e7f8091a2b3c4"])}`,
            "refuse",
          ),
      ],
      ["query: type", ({ rng }) => get(`/streams?limit=1&type=${rng.pick(["", "x".repeat(65)])}`, "refuse")],
      [
        "header: authorization",
        ({ rng }) =>
          get("/streams?limit=1", "refuse", withHeader("authorization", rng.pick(BAD_TOKENS)[1], {})),
      ],
      [
        "header: a token limited to streams or types",
        ({ rng }) =>
          get("/streams?limit=1", "refuse", {
            authorization: `Bearer ${rng.pick([TEST_TOKENS.oneStream, TEST_TOKENS.invoices])}`,
          }),
      ],
      [
        "method: not GET",
        ({ rng }) => ({
          method: rng.pick(["POST", "PUT", "DELETE"]),
          path: "/streams",
          headers: JSON_HEADERS,
          body: text(newStreamBody()),
          expect: "refuse",
        }),
      ],
      [
        "control: a valid list",
        ({ rng }) =>
          get(`/streams?limit=${rng.int(1, 5)}${rng.chance(0.5) ? "&status=running" : ""}`, "accept"),
      ],
    ],
  },
  {
    route: "POST /webhooks/:source",
    weight: 16,
    mutations: [
      [
        "source: not configured",
        ({ rng }) =>
          webhook(
            rng.pick(["nope", "ACME", "a".repeat(65), "acme%00", "acme.", "%C3%BC"]),
            hookBody(),
            "refuse",
          ),
      ],
      [
        "header: missing",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", {
            drop: rng.pick(["webhook-id", "webhook-timestamp", "webhook-signature"]),
          }),
      ],
      [
        "header: webhook-id",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", {
            id: rng.pick(["", "has space", "x".repeat(257), "tab\there"]),
          }),
      ],
      [
        "header: webhook-timestamp",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", {
            timestamp: rng.pick(["abc", "-1", "1e400", "1234567890123456", "", "now"]),
          }),
      ],
      [
        "header: webhook-timestamp stale or ahead",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", { skewSeconds: rng.pick([-400, 400, -86_400, 10 ** 9]) }),
      ],
      [
        "signature: no v1 entry",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", {
            signature: () => rng.pick(["", "v2,abc", "v1", "v1abc", "V1,abc"]),
          }),
      ],
      [
        "signature: not base64 or wrong",
        ({ rng, junk }) =>
          webhook("acme", hookBody(), "refuse", {
            signature: () =>
              `v1,${rng.pick(["!!!", "a", Buffer.from(rng.pick(junk.bytes)).toString("base64"), Buffer.alloc(32).toString("base64")])}`,
          }),
      ],
      [
        "signature: made with another source's secret",
        () => webhook("acme", hookBody(), "refuse", { secret: WEBHOOK_TEST_SECRETS.rotating[0] }),
      ],
      [
        "signature: over another body, id or time",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", {
            signedOver: rng.pick(["body", "id", "timestamp"] as const),
          }),
      ],
      [
        "signature: the right one cut short or altered",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", { alter: rng.pick(["cut", "flip", "v2"] as const) }),
      ],
      [
        "content-type: not JSON (signed)",
        ({ rng }) =>
          webhook("acme", hookBody(), "refuse", {
            contentType: rng.pick([undefined, "text/plain", "application/xml"]),
          }),
      ],
      [
        "body: broken JSON (signed)",
        ({ rng }) => {
          const full = JSON.stringify(hookBodyValue(uuid()));
          return webhook("acme", { body: full.slice(0, rng.int(1, full.length - 1)) }, "refuse");
        },
      ],
      [
        "body: event_id given (signed)",
        () => {
          const target = uuid();
          const value = hookBodyValue(target);
          return webhook(
            "acme",
            {
              body: JSON.stringify({
                ...value,
                events: value.events.map((item) => ({ ...item, event_id: uuid() })),
              }),
              target,
            },
            "refuse",
          );
        },
      ],
      [
        "body: stream_id missing or invalid (signed)",
        ({ rng }) =>
          webhook(
            "acme",
            {
              body: JSON.stringify({
                ...hookBodyValue(uuid()),
                stream_id: rng.pick([undefined, "x", 1, null, "0b8f1d2e3c4a4b5c8d6e7f8091a2b3c4"]),
              }),
            },
            "refuse",
          ),
      ],
      [
        "body: wrong types (signed)",
        ({ rng }) => {
          const target = uuid();
          return webhook(
            "acme",
            {
              body: JSON.stringify({
                stream_id: target,
                events: rng.pick([
                  [],
                  null,
                  "x",
                  [{ event: { type: "nope" } }],
                  [{ event: { ...startedEvent(), workflow_id: "x" } }],
                ]),
              }),
              target,
            },
            "refuse",
          );
        },
      ],
      [
        "body: an invalid sequence (signed)",
        () => {
          const target = uuid();
          return webhook(
            "acme",
            { body: JSON.stringify({ stream_id: target, events: [{ event: contextEvent() }] }), target },
            "refuse",
          );
        },
      ],
      [
        "body: depth and size (signed)",
        ({ rng }) => {
          const target = uuid();
          const which = rng.pick(["deep", "metadata", "huge"] as const);
          const value = hookBodyValue(target) as {
            stream_id: string;
            events: Array<Record<string, unknown>>;
          };
          const raw =
            which === "deep"
              ? JSON.stringify(value).replace('"value":1', `"value":${nested(100_000)}`)
              : which === "metadata"
                ? JSON.stringify({
                    ...value,
                    events: value.events.map((item) => ({
                      ...item,
                      metadata: { pad: "x".repeat(17 * 1024) },
                    })),
                  })
                : JSON.stringify({ ...value, pad: "x".repeat(MAX_BODY_BYTES + 1) });
          return webhook("acme", { body: raw, target }, "refuse");
        },
      ],
      [
        "method: not POST",
        ({ rng }) => ({
          method: rng.pick(["GET", "PUT", "DELETE"]),
          path: "/webhooks/acme",
          headers: JSON_HEADERS,
          expect: "refuse",
        }),
      ],
      [
        "control: a valid delivery",
        ({ rng }) => webhook(rng.pick(["acme", "rotating"]), hookBody(), "accept", { secret: undefined }),
      ],
      [
        "control: a delivery signed with the second of two secrets, among junk entries",
        () =>
          webhook("rotating", hookBody(), "accept", {
            secret: WEBHOOK_TEST_SECRETS.rotating[1],
            extraEntries: true,
          }),
      ],
    ],
  },
  {
    route: "GET /healthz",
    weight: 3,
    mutations: [
      [
        "method: not GET",
        ({ rng }) => ({
          method: rng.pick(["POST", "PUT", "DELETE", "PATCH"]),
          path: "/healthz",
          headers: JSON_HEADERS,
          body: text({}),
          expect: "refuse",
        }),
      ],
      [
        "url: beside the route",
        ({ rng }) => get(rng.pick(["/healthz/", "/healthz/x", "/HEALTHZ", "/healthz.json"]), "refuse"),
      ],
      [
        "header: junk authorization (the route is open)",
        ({ rng }) => get("/healthz", "accept", withHeader("authorization", rng.pick(BAD_TOKENS)[1], {})),
      ],
      [
        "query: junk",
        ({ rng, junk }) => get(`/healthz?${percentEncoded(rng.pick(junk.strings))}=1`, "accept"),
      ],
      ["method: HEAD", () => ({ method: "HEAD", path: "/healthz", headers: {}, expect: "accept" })],
      [
        "header: 40 KiB of junk headers",
        ({ rng }) =>
          get(
            "/healthz",
            "accept",
            Object.fromEntries(
              Array.from({ length: rng.int(1, 40) }, (_, i) => [`x-junk-${i}`, "x".repeat(1000)]),
            ),
          ),
      ],
    ],
  },
  {
    route: "GET /openapi.json",
    weight: 3,
    mutations: [
      [
        "method: not GET",
        ({ rng }) => ({
          method: rng.pick(["POST", "PUT", "DELETE"]),
          path: "/openapi.json",
          headers: JSON_HEADERS,
          body: text({}),
          expect: "refuse",
        }),
      ],
      [
        // The document is public (it holds no data): whatever token comes along is not looked at.
        "header: authorization (ignored)",
        ({ rng }) => get("/openapi.json", "accept", withHeader("authorization", rng.pick(BAD_TOKENS)[1], {})),
      ],
      [
        "query: junk",
        ({ rng, junk }) => get(`/openapi.json?${percentEncoded(rng.pick(junk.strings))}`, "accept"),
      ],
      ["control: the document", () => get("/openapi.json", "accept")],
    ],
  },
  {
    route: "unknown routes",
    weight: 4,
    mutations: [
      [
        "path: near a route",
        ({ rng }) => ({
          method: rng.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
          path: rng.pick([
            "/",
            "/streams/a/b/c",
            "/v1/streams",
            "/STREAMS",
            "/openapi.yaml",
            "/.env",
            `/streams/${uuid()}/events/extra`,
            `/streams%2f${uuid()}%2fevents`,
            "/webhooks",
            "/webhooks/acme/x",
          ]),
          headers: JSON_HEADERS,
          body: text(newStreamBody()),
          expect: "refuse",
        }),
      ],
      [
        "path: random",
        ({ rng, junk }) => ({
          method: rng.pick(["GET", "POST", "DELETE"]),
          path: `/${percentEncoded(rng.pick(junk.strings))}/${percentEncoded(rng.pick(junk.strings))}`,
          headers: { authorization: admin },
          expect: "refuse",
        }),
      ],
      ["path: long", ({ rng }) => get(`/${"x".repeat(rng.int(2000, 40_000))}`, "refuse")],
      [
        "method: HEAD, OPTIONS or TRACE",
        ({ rng }) => ({
          method: rng.pick(["HEAD", "OPTIONS", "TRACE"]),
          path: rng.pick(["/streams", `/streams/${uuid()}/events`, "/nothing", "/openapi.json"]),
          headers: { authorization: admin },
          expect: "either",
        }),
      ],
      ["path: without a token", ({ rng }) => get(rng.pick(["/", "/nothing", "/streams/x/y"]), "refuse", {})],
    ],
  },
];

/** Every UTF-8 byte of `value` percent-encoded (a lone surrogate becomes U+FFFD): always a legal path or query. */
function percentEncoded(value: string): string {
  return [...Buffer.from(value, "utf8")].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
}

function withHeader(
  name: string,
  value: string | string[] | undefined,
  base: Record<string, string | string[]> = JSON_HEADERS,
): Record<string, string | string[]> {
  const headers = { ...base };
  if (value === undefined) delete headers[name];
  else headers[name] = value;
  return headers;
}

function get(
  path: string,
  expect: Expectation,
  headers: Record<string, string | string[]> = { authorization: admin },
): Draft {
  return { method: "GET", path, headers, expect };
}

function watch(
  path: string,
  expect: Expectation,
  headers: Record<string, string | string[]> = { authorization: admin },
): Draft {
  return { method: "GET", path, headers, expect, upgrade: true };
}

function hookBodyValue(target: string) {
  return { stream_id: target, events: [{ event: startedEvent() }, { event: contextEvent("k", 1) }] };
}

function hookBody(): { body: string; target: string } {
  const target = uuid();
  return { body: JSON.stringify(hookBodyValue(target)), target };
}

interface WebhookTwist {
  drop?: "webhook-id" | "webhook-timestamp" | "webhook-signature";
  id?: string;
  timestamp?: string;
  skewSeconds?: number;
  signature?: () => string;
  secret?: string | undefined;
  signedOver?: "body" | "id" | "timestamp";
  alter?: "cut" | "flip" | "v2";
  contentType?: string | undefined;
  extraEntries?: boolean;
}

/** A webhook delivery, signed when it is sent, with one thing about it wrong (or none, for a control). */
function webhook(
  source: string,
  payload: { body: string; target?: string },
  expect: Expectation,
  twist: WebhookTwist = {},
): Draft {
  const webhookId = twist.id ?? `msg_${uuid()}`;
  const secret =
    twist.secret ?? (source === "rotating" ? WEBHOOK_TEST_SECRETS.rotating[0] : WEBHOOK_TEST_SECRETS.acme[0]);
  const headers: Record<string, string> = {};
  const contentType = "contentType" in twist ? twist.contentType : "application/json";
  if (contentType !== undefined) headers["content-type"] = contentType;
  return {
    method: "POST",
    path: `/webhooks/${source}`,
    headers,
    body: text(payload.body),
    expect,
    ...(payload.target === undefined ? {} : { target: payload.target, fresh: true }),
    late: async () => {
      const now = Math.floor(Date.now() / 1000) + (twist.skewSeconds ?? 0);
      const timestamp = twist.timestamp ?? String(now);
      const signedId = twist.signedOver === "id" ? `${webhookId}x` : webhookId;
      const signedTime = twist.signedOver === "timestamp" ? now + 1 : Number(timestamp);
      const signedBody = twist.signedOver === "body" ? `${payload.body} ` : payload.body;
      let signature = twist.signature
        ? twist.signature()
        : await signWebhook(secret, signedId, Number.isFinite(signedTime) ? signedTime : now, signedBody);
      if (twist.alter === "cut") signature = signature.slice(0, -6);
      if (twist.alter === "flip")
        signature = `${signature.slice(0, 5)}${signature[5] === "A" ? "B" : "A"}${signature.slice(6)}`;
      if (twist.alter === "v2") signature = signature.replace(/^v1,/, "v2,");
      if (twist.extraEntries)
        signature = `v1,${Buffer.alloc(32).toString("base64")} v1a,x ${signature} v2,zzz`;
      const all: Record<string, string> = {
        "webhook-id": webhookId,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
      };
      if (twist.drop) delete all[twist.drop];
      return all;
    },
  };
}

/** `count` cases over every route, in the order the seeded generator gives. */
export function generateCorpus(count: number, rng: Random, streams: CorpusStreams): Case[] {
  const seed = rng.seed();
  const junk: Junk = {
    json: fc.sample(fc.json({ maxDepth: 4 }), { seed, numRuns: 200 }),
    values: fc.sample(fc.jsonValue({ maxDepth: 3 }), { seed: seed + 1, numRuns: 200 }),
    strings: fc.sample(fc.string({ unit: "binary", minLength: 1, maxLength: 40 }), {
      seed: seed + 2,
      numRuns: 200,
    }),
    bytes: fc.sample(fc.uint8Array({ minLength: 1, maxLength: 300 }), { seed: seed + 3, numRuns: 200 }),
  };
  const ctx: Ctx = { rng, streams, junk };
  const cursors = ROUTES.map(() => rng.int(0, 1_000));
  const cases: Case[] = [];
  const weights = ROUTES.map((route, index) => [route.weight, index] as const);
  for (let id = 0; id < count; id++) {
    const index = rng.weighted(weights);
    const route = ROUTES[index];
    if (route === undefined) throw new Error("no route");
    const cursor = cursors[index] ?? 0;
    cursors[index] = cursor + 1;
    const mutation = route.mutations[cursor % route.mutations.length];
    if (mutation === undefined) throw new Error("no mutation");
    const [kind, make] = mutation;
    cases.push({ id, route: route.route, kind, ...make(ctx) });
  }
  return cases;
}

/** Every (route, kind) pair the corpus can produce, to report coverage. */
export function corpusKinds(): Array<{ route: string; kind: string }> {
  return ROUTES.flatMap((route) => route.mutations.map(([kind]) => ({ route: route.route, kind })));
}
