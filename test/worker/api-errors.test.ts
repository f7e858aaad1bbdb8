import { beforeAll, describe, expect, it } from "vitest";
import { contextUpdated, started } from "../support/event-builders";
import {
  api,
  appendEvents,
  appendOk,
  type EventsPageResult,
  expectNoStream,
  expectProblem,
  expectVersion,
  getJson,
  type Problem,
  problemCode,
  type StateResult,
} from "../support/http-client";

// Bad input through real HTTP requests: every refusal is a 4xx application/problem+json
// document whose detail names the problem, never a 5xx, and nothing is written.

const started1 = started("8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c");

/** `depth` nested arrays around a number. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level++) value = [value];
  return value;
}

/** A body of JSON text; `events` items are JSON text too, so tests can send what JSON.stringify cannot. */
const rawBody = (...items: string[]) => `{"events":[${items.join(",")}]}`;

interface BadAppend {
  name: string;
  /** The body: an object is sent as JSON, a string as is. */
  body: Record<string, unknown> | unknown[] | string | null;
  headers?: Record<string, string>;
  status: number;
  detail: RegExp;
  /** JSON pointer of an entry expected in the problem's `errors`. */
  pointer?: string;
  code?: string;
}

const event = (fields: Record<string, unknown>) => ({ events: [{ event: { ...started1, ...fields } }] });

const BAD_APPENDS: BadAppend[] = [
  // The body is not JSON, or not the kind of JSON an append is.
  { name: "malformed JSON", body: '{"events": [', status: 400, detail: /not valid JSON/ },
  { name: "an empty body", body: "", status: 400, detail: /not valid JSON/ },
  { name: "a trailing comma", body: '{"events": [],}', status: 400, detail: /not valid JSON/ },
  {
    name: "text/plain",
    body: JSON.stringify({ events: [{ event: started1 }] }),
    headers: { "content-type": "text/plain" },
    status: 415,
    detail: /Content-Type: application\/json/,
    code: "unsupported_media_type",
  },
  {
    name: "a form",
    body: "events=1",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    status: 415,
    detail: /Content-Type: application\/json/,
  },
  {
    name: "a JSON look-alike media type",
    body: JSON.stringify({ events: [{ event: started1 }] }),
    headers: { "content-type": "application/jsonx" },
    status: 415,
    detail: /Content-Type: application\/json/,
  },
  { name: "an array body", body: [], status: 400, detail: /\(root\)/ },
  { name: "a null body", body: null, status: 400, detail: /\(root\)/ },
  { name: "a number body", body: "42", status: 400, detail: /\(root\)/ },
  // events itself.
  { name: "no events member", body: {}, status: 400, detail: /events:/, pointer: "/events" },
  { name: "empty events", body: { events: [] }, status: 400, detail: /events: send at least one event/ },
  { name: "events not an array", body: { events: { event: started1 } }, status: 400, detail: /events:/ },
  { name: "a null event item", body: { events: [null] }, status: 400, detail: /events\.0/ },
  {
    name: "an item without event",
    body: { events: [{ event_id: crypto.randomUUID() }] },
    status: 400,
    detail: /events\.0\.event/,
    pointer: "/events/0/event",
  },
  // The events' types and fields.
  {
    name: "an unknown event type",
    body: { events: [{ event: { type: "workflow_paused", paused_at: "2026-01-01T00:00:00Z" } }] },
    status: 400,
    detail: /events\.0\.event\.type: expected "type" to be one of workflow_started, /,
    pointer: "/events/0/event/type",
  },
  {
    name: "an event without type",
    body: { events: [{ event: { workflow_id: crypto.randomUUID() } }] },
    status: 400,
    detail: /events\.0\.event\.type/,
  },
  {
    name: "workflow_id of the wrong type",
    body: event({ workflow_id: 42 }),
    status: 400,
    detail: /events\.0\.event\.workflow_id: expected a UUID string/,
    pointer: "/events/0/event/workflow_id",
  },
  {
    name: "workflow_id not a UUID",
    body: event({ workflow_id: "wf-1" }),
    status: 400,
    detail: /events\.0\.event\.workflow_id: expected a hyphenated UUID/,
  },
  {
    name: "config_version of the wrong type",
    body: event({ config_version: 7 }),
    status: 400,
    detail: /events\.0\.event\.config_version: expected a string/,
  },
  {
    name: "a timestamp that is not RFC 3339",
    body: event({ started_at: "yesterday" }),
    status: 400,
    detail: /events\.0\.event\.started_at: expected an RFC 3339 timestamp/,
  },
  {
    name: "a timestamp on a day that does not exist",
    body: event({ started_at: "2026-02-30T10:00:00Z" }),
    status: 400,
    detail: /events\.0\.event\.started_at: expected an RFC 3339 timestamp .*2026-02-30/,
  },
  {
    name: "a timestamp of the wrong type",
    body: event({ started_at: 1767225600000 }),
    status: 400,
    detail: /started_at: expected an RFC 3339 timestamp string/,
  },
  {
    name: "retries as a string",
    body: { events: [{ event: { type: "step_failed", step_id: "s", error: "e", retries: "3" } }] },
    status: 400,
    detail: /events\.0\.event\.retries: expected an integer from 0 to 255/,
  },
  {
    name: "retries beyond a u8",
    body: { events: [{ event: { type: "step_failed", step_id: "s", error: "e", retries: 256 } }] },
    status: 400,
    detail: /events\.0\.event\.retries: expected an integer from 0 to 255/,
  },
  {
    name: "assigned_to not an array",
    body: { events: [{ event: { type: "step_activated", step_id: "s", assigned_to: "alice" } }] },
    status: 400,
    detail: /events\.0\.event\.assigned_to: expected an array of UUIDs/,
  },
  {
    name: "recoverable as a string",
    body: { events: [{ event: { type: "workflow_failed", error: "e", recoverable: "yes" } }] },
    status: 400,
    detail: /events\.0\.event\.recoverable: expected true or false/,
  },
  {
    name: "an empty step id",
    body: { events: [{ event: { type: "step_skipped", step_id: "", reason: "r" } }] },
    status: 400,
    detail: /events\.0\.event\.step_id: must not be empty/,
  },
  {
    name: "a non-finite agreement",
    body: rawBody(
      '{"event":{"type":"consensus_calculated","step_id":"s","agreement":1e400,"metric":"m","resolved_by":null}}',
    ),
    status: 400,
    detail: /events\.0\.event\.agreement/,
  },
  {
    name: "stream_type of the wrong type",
    body: { events: [{ event: started1 }], stream_type: 5 },
    status: 400,
    detail: /stream_type/,
    pointer: "/stream_type",
  },
  {
    name: "stream_type with spaces",
    body: { events: [{ event: started1 }], stream_type: "my orders" },
    status: 400,
    detail: /stream_type: use 1 to 64 letters, digits/,
  },
  {
    name: "metadata of the wrong kind (a non-finite number)",
    body: rawBody(`{"event":${JSON.stringify(started1)},"metadata":{"n":-1e999}}`),
    status: 400,
    detail: /events\.0\.metadata: expected a finite number/,
  },
  // Missing required fields.
  {
    name: "workflow_started without workflow_id",
    body: { events: [{ event: { type: "workflow_started", config_version: "v1" } }] },
    status: 400,
    detail: /events\.0\.event\.workflow_id/,
    pointer: "/events/0/event/workflow_id",
  },
  {
    name: "context_updated without key and value",
    body: { events: [{ event: started1 }, { event: { type: "context_updated" } }] },
    status: 400,
    detail: /events\.1\.event\.key: .*events\.1\.event\.value: expected a JSON value/,
  },
  {
    name: "step_completed without result",
    body: { events: [{ event: { type: "step_completed", step_id: "s" } }] },
    status: 400,
    detail: /events\.0\.event\.result: expected a JSON value \(this field is required\)/,
  },
  // Event ids.
  {
    name: "a non-UUID event_id",
    body: { events: [{ event: started1, event_id: "evt-1" }] },
    status: 400,
    detail: /events\.0\.event_id: expected a hyphenated UUID/,
    pointer: "/events/0/event_id",
  },
  {
    name: "a numeric event_id",
    body: { events: [{ event: started1, event_id: 7 }] },
    status: 400,
    detail: /events\.0\.event_id: expected a UUID string/,
  },
  {
    name: "duplicate event ids in one append",
    body: {
      events: [
        { event: started1, event_id: "4a7e1b2c-3d4e-4f5a-8b6c-7d8e9f0a1b2c" },
        { event: contextUpdated("a", 1), event_id: "4A7E1B2C-3D4E-4F5A-8B6C-7D8E9F0A1B2C" },
      ],
    },
    status: 400,
    detail: /Two events of one append share an event_id/,
    code: "invalid_append",
  },
  // Expected versions.
  {
    name: "expected_version as a numeric string",
    body: { events: [{ event: started1 }], expected_version: "0" },
    status: 400,
    detail: /expected_version/,
    pointer: "/expected_version",
  },
  {
    name: "a negative expected_version",
    body: { events: [{ event: started1 }], expected_version: -1 },
    status: 400,
    detail: /expected_version/,
  },
  {
    name: "a fractional expected_version",
    body: { events: [{ event: started1 }], expected_version: 1.5 },
    status: 400,
    detail: /expected_version/,
  },
  {
    name: "an unknown expected_version keyword",
    body: { events: [{ event: started1 }], expected_version: "latest" },
    status: 400,
    detail: /expected_version/,
  },
  {
    name: "expected_version beyond a safe integer",
    body: { events: [{ event: started1 }], expected_version: 2 ** 53 },
    status: 400,
    detail: /expected_version/,
  },
  {
    name: "If-Match without quotes",
    body: { events: [{ event: started1 }] },
    headers: { "if-match": "0" },
    status: 400,
    detail: /If-Match must be the stream's ETag, such as "7" \(with the quotes\), or \*; got "0"/,
  },
  {
    name: "a weak If-Match",
    body: { events: [{ event: started1 }] },
    headers: { "if-match": 'W/"0"' },
    status: 400,
    detail: /If-Match must be the stream's ETag/,
  },
  {
    name: "a list in If-Match",
    body: { events: [{ event: started1 }] },
    headers: { "if-match": '"0", "1"' },
    status: 400,
    detail: /If-Match must be the stream's ETag/,
  },
  {
    name: "a negative If-Match",
    body: { events: [{ event: started1 }] },
    headers: { "if-match": '"-1"' },
    status: 400,
    detail: /If-Match must be the stream's ETag/,
  },
  {
    name: "If-Match disagreeing with expected_version",
    body: { events: [{ event: started1 }], expected_version: 0 },
    headers: { "if-match": '"1"' },
    status: 400,
    detail: /If-Match says 1 but expected_version says 0; send one of them/,
  },
  {
    name: "If-Match * disagreeing with expected_version",
    body: { events: [{ event: started1 }], expected_version: "no_stream" },
    headers: { "if-match": "*" },
    status: 400,
    detail: /If-Match says "stream_exists" but expected_version says "no_stream"/,
  },
  // Sizes.
  {
    name: "more than 500 events",
    body: {
      events: Array.from({ length: 501 }, (_, index) => ({ event: contextUpdated(`k${index}`, index) })),
    },
    status: 413,
    detail: /events: send at most 500 events per append/,
    code: "too_large",
  },
  {
    name: "metadata over 16 KiB",
    body: { events: [{ event: started1, metadata: "x".repeat(16 * 1024 - 1) }] },
    status: 413,
    detail: /events\.0\.metadata: metadata is 16385 bytes of JSON; the limit is 16384/,
    code: "too_large",
  },
  {
    name: "a body over 1 MiB",
    body: { events: [{ event: started1, metadata: "x".repeat(1024 * 1024) }] },
    status: 413,
    detail: /The body is larger than 1048576 bytes/,
    code: "too_large",
  },
  // Values PostgreSQL cannot store, or that nest without end.
  {
    name: 'a NUL character ("\\u0000") in a context value',
    body: { events: [{ event: started1 }, { event: contextUpdated("note", "a\u0000b") }] },
    status: 400,
    detail: /U\+0000/,
  },
  {
    name: "a NUL character in a metadata key",
    body: { events: [{ event: started1, metadata: { "trace\u0000id": 1 } }] },
    status: 400,
    detail: /U\+0000/,
  },
  {
    name: "a NUL character in a step id",
    body: {
      events: [{ event: started1 }, { event: { type: "step_skipped", step_id: "\u0000", reason: "r" } }],
    },
    status: 400,
    detail: /U\+0000/,
  },
  {
    name: "an unpaired surrogate in a string",
    body: rawBody(`{"event":${JSON.stringify(started1)},"metadata":{"note":"x\\ud800y"}}`),
    status: 400,
    detail: /events\.0\.metadata\.note: contains an unpaired surrogate \(U\+D800\)/,
  },
  {
    name: "JSON nested 100 levels deep in a context value",
    body: { events: [{ event: started1 }, { event: contextUpdated("deep", nested(100) as never) }] },
    status: 400,
    detail: /events\.1\.event\.value: JSON nested deeper than 64 levels/,
    pointer: "/events/1/event/value",
  },
  {
    name: "JSON nested 100 levels deep in metadata",
    body: { events: [{ event: started1, metadata: nested(100) as never }] },
    status: 400,
    detail: /events\.0\.metadata: JSON nested deeper than 64 levels/,
  },
  {
    name: "JSON nested 500000 levels deep in metadata (just under 1 MiB, so also too large)",
    body: rawBody(
      `{"event":${JSON.stringify(started1)},"metadata":${"[".repeat(500_000)}${"]".repeat(500_000)}}`,
    ),
    status: 413,
    detail:
      /events\.0\.metadata: JSON nested deeper than 64 levels; events\.0\.metadata: metadata is 1000000 bytes/,
  },
  {
    name: "JSON nested 100000 levels deep in a step result",
    body: rawBody(
      `{"event":{"type":"step_completed","step_id":"s","result":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}}`,
    ),
    status: 400,
    detail: /events\.0\.event\.result: JSON nested deeper than 64 levels/,
  },
  {
    name: "a __proto__ member in place of events",
    body: '{"__proto__": {"events": [{"event": {"type": "workflow_started"}}]}}',
    status: 400,
    detail: /events:/,
  },
];

/** Sends the bad append and checks its problem document. */
async function sendBadAppend(streamId: string, bad: BadAppend): Promise<Problem> {
  const body = typeof bad.body === "string" ? bad.body : JSON.stringify(bad.body);
  const problem = await expectProblem(
    await appendEvents(streamId, body, bad.headers),
    bad.status,
    bad.detail,
  );
  expect(problem.instance).toBe(`/streams/${streamId}/events`);
  if (bad.code !== undefined) expect(problemCode(problem)).toBe(bad.code);
  if (bad.pointer !== undefined) {
    expect(problem.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ pointer: bad.pointer })]),
    );
  }
  return problem;
}

// One stream id per describe rather than per case: every stream an actor touches keeps a
// database connection open for 10 s after its last query, and a burst of ~60 fresh streams
// exhausts the embedded PGlite's 64 connections (a plain PostgreSQL's 100 a little later).
// Nothing is ever written to these streams, so the cases cannot disturb one another.

describe("a bad append to a new stream", () => {
  const streamId = crypto.randomUUID();

  it.each(BAD_APPENDS)("$name → $status, nothing written", async (bad) => {
    await sendBadAppend(streamId, bad);
    await expectNoStream(streamId);
  });
});

describe("a bad append to an existing stream", () => {
  const streamId = crypto.randomUUID();
  let before: StateResult;

  beforeAll(async () => {
    await appendOk(streamId, { events: [{ event: started() }, { event: contextUpdated("kept", true) }] });
    before = await getJson<StateResult>(`/streams/${streamId}/state`);
  });

  it.each(BAD_APPENDS)("$name → $status, version unchanged", async (bad) => {
    await sendBadAppend(streamId, bad);
    await expectVersion(streamId, 2);
    expect(await getJson<StateResult>(`/streams/${streamId}/state`)).toEqual(before);
    const page = await getJson<EventsPageResult>(`/streams/${streamId}/events`);
    expect(page.events).toHaveLength(2);
  });
});

describe("appends refused before the body is read", () => {
  it("answers 415 when the content type is missing", async () => {
    const streamId = crypto.randomUUID();
    const bytes = new TextEncoder().encode(JSON.stringify({ events: [{ event: started() }] }));
    const response = await api(`/streams/${streamId}/events`, { method: "POST", body: bytes });
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const problem = await expectProblem(response, 415, /Content-Type: application\/json/);
    expect(problemCode(problem)).toBe("unsupported_media_type");
    await expectNoStream(streamId);
  });

  it("answers 413 for a streamed body over 1 MiB that has no Content-Length", async () => {
    const streamId = crypto.randomUUID();
    const prefix = new TextEncoder().encode(`{"events":[{"event":${JSON.stringify(started())},"metadata":"`);
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    const suffix = new TextEncoder().encode('"}]}');
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(prefix);
        if (sent < 20) controller.enqueue(chunk);
        else {
          controller.enqueue(suffix);
          controller.close();
        }
        sent++;
      },
    });
    const response = await api(`/streams/${streamId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await expectProblem(response, 413, /larger than 1048576 bytes/);
    await expectNoStream(streamId);
  });

  it("answers 400 for a stream id that is not a UUID", async () => {
    for (const id of [
      "not-a-uuid",
      "8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3",
      "8f14e45fceea467fa0e61c1d5e1b2a3c",
    ]) {
      const problem = await expectProblem(
        await appendEvents(id, { events: [{ event: started() }] }),
        400,
        /The URL is invalid: streamId: expected a hyphenated UUID/,
      );
      expect(problem.errors).toEqual([expect.objectContaining({ pointer: "/streamId" })]);
    }
  });
});

describe("bad query strings and stream ids on reads", () => {
  const streamId = crypto.randomUUID();
  const cases: { path: string; detail: RegExp }[] = [
    { path: `/streams/${streamId}/events?limit=0`, detail: /The query string is invalid: limit:/ },
    { path: `/streams/${streamId}/events?limit=5000`, detail: /limit: limit is at most 1000/ },
    { path: `/streams/${streamId}/events?limit=ten`, detail: /limit: limit must be a whole number/ },
    { path: `/streams/${streamId}/events?limit=`, detail: /limit: limit must be a whole number/ },
    { path: `/streams/${streamId}/events?from=-1`, detail: /from: from must be a whole number/ },
    { path: `/streams/${streamId}/events?from=1.5`, detail: /from: from must be a whole number/ },
    { path: `/streams/${streamId}/events?from=1e3`, detail: /from: from must be a whole number/ },
    { path: `/streams/${streamId}/events?direction=sideways`, detail: /direction:/ },
    { path: `/streams/${streamId}/state?at=abc`, detail: /at: at must be a whole number/ },
    { path: `/streams/${streamId}/state?at=-1`, detail: /at: at must be a whole number/ },
    { path: `/streams/${streamId}/state?at=99999999999999999999`, detail: /at: at must be a whole number/ },
    { path: "/streams?status=bogus", detail: /status: Invalid option: expected one of "pending"\|"running"/ },
    { path: "/streams?limit=0", detail: /limit:/ },
    { path: "/streams?limit=5000", detail: /limit: limit is at most 1000/ },
    { path: "/streams?cursor=page-2", detail: /cursor: expected a hyphenated UUID/ },
    { path: "/streams?type=", detail: /type:/ },
    { path: `/streams?type=${"t".repeat(65)}`, detail: /type:/ },
    { path: "/streams/not-a-uuid", detail: /The URL is invalid: streamId: expected a hyphenated UUID/ },
    { path: "/streams/not-a-uuid/events", detail: /streamId: expected a hyphenated UUID/ },
    { path: "/streams/not-a-uuid/state", detail: /streamId: expected a hyphenated UUID/ },
  ];

  it.each(cases)("GET $path → 400", async ({ path, detail }) => {
    const problem = await expectProblem(await api(path), 400, detail);
    expect(problemCode(problem)).toBe("invalid_request");
    expect(problem.instance).toBe(new URL(path, "http://example.com").pathname);
    expect(Array.isArray(problem.errors)).toBe(true);
  });
});

describe("routes and methods", () => {
  it.each(["/nope", "/", "/streams/8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c/snapshots", "/streams/a/b/c/d"])(
    "GET %s → 404 problem",
    async (path) => {
      const problem = await expectProblem(
        await api(path),
        404,
        /Nothing is served at .*; see \/openapi\.json/,
      );
      expect(problemCode(problem)).toBe("not_found");
      expect(problem.detail).toContain(path);
    },
  );

  const streamPath = "/streams/8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c";
  it.each([
    { method: "DELETE", path: `${streamPath}/events`, allow: "GET, POST" },
    { method: "PUT", path: `${streamPath}/events`, allow: "GET, POST" },
    { method: "PUT", path: "/streams", allow: "GET" },
    { method: "POST", path: "/streams", allow: "GET" },
    { method: "PATCH", path: streamPath, allow: "GET" },
    { method: "DELETE", path: streamPath, allow: "GET" },
    { method: "POST", path: `${streamPath}/state`, allow: "GET" },
    { method: "POST", path: "/healthz", allow: "GET" },
    { method: "DELETE", path: "/openapi.json", allow: "GET" },
  ])("$method $path → 405 with Allow: $allow", async ({ method, path, allow }) => {
    const response = await api(path, { method });
    expect(response.headers.get("allow")).toBe(allow);
    const problem = await expectProblem(
      response,
      405,
      new RegExp(
        `^${method} is not served at ${path.replaceAll(".", "\\.")}; use ${allow.replace(", ", " or ")}\\.$`,
      ),
    );
    expect(problemCode(problem)).toBe("method_not_allowed");
  });

  it("writes nothing for a DELETE of a stream's events", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    await expectProblem(await api(`/streams/${streamId}/events`, { method: "DELETE" }), 405);
    await expectVersion(streamId, 1);
  });
});

describe("refusals that depend on the stream", () => {
  it("leave the stream as it was after a NUL or a surrogate in a later append", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    for (const text of ["before\u0000after", "lone \udc00 low"]) {
      await expectProblem(
        await appendEvents(streamId, { events: [{ event: contextUpdated("bad", text) }] }),
        400,
        /events\.0\.event\.value: contains (the character U\+0000|an unpaired surrogate \(U\+DC00\))/,
      );
    }
    // A well-formed surrogate pair is fine.
    await appendOk(streamId, { events: [{ event: contextUpdated("emoji", "🚀 \ud83d\ude80") }] });
    const state = await getJson<StateResult>(`/streams/${streamId}/state`);
    expect(state.version).toBe(2);
    expect(state.state.context).toEqual({ emoji: "🚀 🚀" });
  });

  it("do not fail the other appends of the same group commit", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    // The first append occupies the writer; the others queue and are decided as one batch.
    const responses = await Promise.all([
      appendEvents(streamId, { events: [{ event: contextUpdated("a", 1) }] }),
      appendEvents(streamId, { events: [{ event: contextUpdated("b", 2) }] }),
      appendEvents(streamId, { events: [{ event: contextUpdated("c", "\u0000") }] }),
      appendEvents(streamId, { events: [{ event: contextUpdated("d", "\ud800") }] }),
      appendEvents(streamId, { events: [{ event: contextUpdated("e", 5) }] }),
    ]);
    const statuses = responses.map((response) => response.status);
    for (const response of responses) await response.body?.cancel();
    expect(statuses).toEqual([201, 201, 400, 400, 201]);
    const state = await getJson<StateResult>(`/streams/${streamId}/state`);
    expect(state.version).toBe(4);
    expect(state.state.context).toEqual({ a: 1, b: 2, e: 5 });
  });
});
