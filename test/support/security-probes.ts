import {
  LIMITED_STREAM_ID,
  SOURCE_STREAM_ID,
  TEST_TOKENS,
  TEST_WEBHOOK_SOURCES,
  WORKER_TIER_LIMITS,
} from "./test-tokens";
import { webhookHeaders } from "./webhook-signing";

// Issue 10's probes, replayed: what an attacker sent, by category, and what the Worker
// answers now. test/worker/security.test.ts sends every single-request probe and checks
// its answer; the scenarios (several requests each) are tests of their own, named here.
// `npm run soak` writes the counts into docs/reliability.md from this same list
// (securitySection), so the page says what the tests check.

export type ProbeCategory = "auth" | "webhooks" | "input" | "leaks" | "exhaustion";

export const PROBE_CATEGORIES: Record<ProbeCategory, string> = {
  auth: "credentials carried where they do not count, wrong scopes and stream limits",
  webhooks: "unsigned, stale, forged, foreign-source and out-of-scope deliveries",
  input: "text PostgreSQL cannot hold, malformed ids, numbers and bodies",
  leaks: "a limited token asking about streams out of its scope",
  exhaustion: "request rates, watchers, slow bodies, listings and health checks at volume",
};

/** What a probe needs that exists only at run time. */
export interface ProbeContext {
  /** A stream of type workflow with two events, written by the admin token. */
  workflowStream: string;
}

export interface ProbeRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface Probe {
  category: ProbeCategory;
  /** What is tried, in a few words. */
  what: string;
  request(context: ProbeContext): Promise<ProbeRequest> | ProbeRequest;
  /** The answer now: a status and, for a problem document, its code. */
  answer: { status: number; code?: string };
}

/** Tests of several requests each (test/worker/security*.test.ts, test/e2e/security.test.ts). */
export interface ProbeScenario {
  category: ProbeCategory;
  what: string;
  /** Requests the test sends (at most, where it stops at the first refusal). */
  requests: number;
  answer: string;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = { "content-type": "application/json" };
const ADMIN = TEST_TOKENS.admin;
const appendBody = JSON.stringify({
  events: [{ event: { type: "context_updated", key: "probe", value: 1 } }],
});
const startBody = JSON.stringify({
  events: [{ event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } }],
});

/** The routes a token opens, with a request for each (the watch route as a WebSocket upgrade). */
function tokenRoutes(streamId: string): Array<{ name: string; request: ProbeRequest }> {
  const upgrade = { upgrade: "websocket", connection: "upgrade" };
  return [
    { name: "GET /streams", request: { method: "GET", path: "/streams", headers: {} } },
    { name: "GET /streams/:id", request: { method: "GET", path: `/streams/${streamId}`, headers: {} } },
    {
      name: "GET /streams/:id/events",
      request: { method: "GET", path: `/streams/${streamId}/events`, headers: {} },
    },
    {
      name: "POST /streams/:id/events",
      request: { method: "POST", path: `/streams/${streamId}/events`, headers: json, body: appendBody },
    },
    {
      name: "GET /streams/:id/state",
      request: { method: "GET", path: `/streams/${streamId}/state`, headers: {} },
    },
    {
      name: "GET /streams/:id/watch",
      request: { method: "GET", path: `/streams/${streamId}/watch`, headers: upgrade },
    },
  ];
}

/** Where else than `Authorization: Bearer` an attacker put the admin token (or something like it). */
const CARRIERS: Array<{ name: string; apply: (request: ProbeRequest) => ProbeRequest }> = [
  { name: "no token", apply: (request) => request },
  {
    name: "token in ?access_token=",
    apply: (request) => ({ ...request, path: `${request.path}?access_token=${ADMIN}` }),
  },
  { name: "token in ?token=", apply: (request) => ({ ...request, path: `${request.path}?token=${ADMIN}` }) },
  {
    name: "token in a cookie",
    apply: (request) => ({ ...request, headers: { ...request.headers, cookie: `token=${ADMIN}` } }),
  },
  {
    name: "token in X-Api-Key",
    apply: (request) => ({ ...request, headers: { ...request.headers, "x-api-key": ADMIN } }),
  },
  {
    name: "token as Basic credentials",
    apply: (request) => ({
      ...request,
      headers: { ...request.headers, authorization: `Basic ${btoa(`${ADMIN}:`)}` },
    }),
  },
  {
    name: "lower-case bearer scheme",
    apply: (request) => ({ ...request, headers: { ...request.headers, authorization: `bearer ${ADMIN}` } }),
  },
  {
    name: "a token one character off",
    apply: (request) => ({
      ...request,
      headers: { ...request.headers, ...bearer(`${ADMIN.slice(0, -1)}x`) },
    }),
  },
];

function authProbes(): Probe[] {
  const probes: Probe[] = [];
  for (const carrier of CARRIERS) {
    for (const route of tokenRoutes("{stream}")) {
      probes.push({
        category: "auth",
        what: `${route.name}: ${carrier.name}`,
        request: ({ workflowStream }) => {
          const request = carrier.apply(route.request);
          return { ...request, path: request.path.replace("{stream}", workflowStream) };
        },
        answer: { status: 401, code: "unauthorized" },
      });
    }
  }
  // The subprotocol counts on a WebSocket upgrade only (row 7).
  for (const route of tokenRoutes("{stream}").filter(({ name }) => !name.endsWith("/watch"))) {
    probes.push({
      category: "auth",
      what: `${route.name}: token as a bearer.<token> subprotocol without an upgrade`,
      request: ({ workflowStream }) => ({
        ...route.request,
        path: route.request.path.replace("{stream}", workflowStream),
        headers: { ...route.request.headers, "sec-websocket-protocol": `glyph-streams.v1, bearer.${ADMIN}` },
      }),
      answer: { status: 401, code: "unauthorized" },
    });
  }
  const forbidden = { status: 403, code: "forbidden" };
  const scoped: Array<[string, (context: ProbeContext) => ProbeRequest, { status: number; code: string }]> = [
    [
      "a read token appends",
      ({ workflowStream }) => ({
        method: "POST",
        path: `/streams/${workflowStream}/events`,
        headers: { ...json, ...bearer(TEST_TOKENS.reader) },
        body: appendBody,
      }),
      forbidden,
    ],
    [
      "a read token appends with X-HTTP-Method-Override: GET",
      ({ workflowStream }) => ({
        method: "POST",
        path: `/streams/${workflowStream}/events`,
        headers: { ...json, ...bearer(TEST_TOKENS.reader), "x-http-method-override": "GET" },
        body: appendBody,
      }),
      forbidden,
    ],
    [
      "an append token reads the state",
      ({ workflowStream }) => ({
        method: "GET",
        path: `/streams/${workflowStream}/state`,
        headers: bearer(TEST_TOKENS.appender),
      }),
      forbidden,
    ],
    [
      "an append token reads with X-HTTP-Method-Override: POST",
      ({ workflowStream }) => ({
        method: "GET",
        path: `/streams/${workflowStream}/events`,
        headers: { ...bearer(TEST_TOKENS.appender), "x-http-method-override": "POST" },
      }),
      forbidden,
    ],
    [
      "a one-stream token reads another stream",
      ({ workflowStream }) => ({
        method: "GET",
        path: `/streams/${workflowStream}`,
        headers: bearer(TEST_TOKENS.oneStream),
      }),
      forbidden,
    ],
    [
      "a one-stream token reads another stream by its upper-case id",
      ({ workflowStream }) => ({
        method: "GET",
        path: `/streams/${workflowStream.toUpperCase()}/state`,
        headers: bearer(TEST_TOKENS.oneStream),
      }),
      forbidden,
    ],
    [
      "a one-stream token appends to another stream",
      ({ workflowStream }) => ({
        method: "POST",
        path: `/streams/${workflowStream}/events`,
        headers: { ...json, ...bearer(TEST_TOKENS.oneStream) },
        body: appendBody,
      }),
      forbidden,
    ],
    [
      "a one-stream token lists streams",
      () => ({ method: "GET", path: "/streams", headers: bearer(TEST_TOKENS.oneStream) }),
      forbidden,
    ],
    [
      // The URL is normalised first (%2e%2e is ..), so this is a read of the other stream.
      "a one-stream token climbs out of its stream with %2e%2e",
      ({ workflowStream }) => ({
        method: "GET",
        path: `/streams/${LIMITED_STREAM_ID}/%2e%2e/%2e%2e/streams/${workflowStream}/state`,
        headers: bearer(TEST_TOKENS.oneStream),
      }),
      forbidden,
    ],
  ];
  for (const [what, request, answer] of scoped) probes.push({ category: "auth", what, request, answer });
  return probes;
}

/** A signed delivery to `source`, its body made by `body` (from a fresh stream id). */
async function delivery(
  source: keyof typeof TEST_WEBHOOK_SOURCES,
  body: Record<string, unknown>,
  options: { secret?: string; timestamp?: number; sendBody?: string; path?: string } = {},
): Promise<ProbeRequest> {
  const entry = TEST_WEBHOOK_SOURCES[source];
  const secret =
    options.secret ??
    (Array.isArray(entry) ? entry[0] : (entry as { secrets: readonly string[] }).secrets[0]);
  const text = JSON.stringify(body);
  const headers = await webhookHeaders(
    secret ?? "",
    `msg_${crypto.randomUUID().replaceAll("-", "")}`,
    text,
    options.timestamp,
  );
  return {
    method: "POST",
    path: options.path ?? `/webhooks/${source}`,
    headers: { ...json, ...headers },
    body: options.sendBody ?? text,
  };
}

function webhookProbes(): Probe[] {
  const started = () => ({
    stream_id: crypto.randomUUID(),
    events: [{ event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } }],
  });
  const unverified = (code: string) => ({ status: 401, code });
  const probes: Array<
    [string, () => Promise<ProbeRequest> | ProbeRequest, { status: number; code: string }]
  > = [
    [
      "an unknown source",
      () => delivery("acme", started(), { path: "/webhooks/nobody" }),
      { status: 404, code: "webhook_source_not_found" },
    ],
    [
      "a source name in upper case",
      () => delivery("acme", started(), { path: "/webhooks/ACME" }),
      { status: 404, code: "webhook_source_not_found" },
    ],
    [
      "no signature headers",
      () => ({ method: "POST", path: "/webhooks/acme", headers: json, body: JSON.stringify(started()) }),
      unverified("missing_webhook_header"),
    ],
    [
      "a timestamp six minutes old",
      () => delivery("acme", started(), { timestamp: Math.floor(Date.now() / 1000) - 360 }),
      unverified("stale_webhook_timestamp"),
    ],
    [
      "signed with another source's secret",
      () => delivery("acme", started(), { secret: TEST_WEBHOOK_SOURCES.rotating[0] }),
      unverified("invalid_webhook_signature"),
    ],
    [
      "a body other than the one signed",
      () => delivery("acme", started(), { sendBody: JSON.stringify(started()) }),
      unverified("invalid_webhook_signature"),
    ],
    [
      "events that bring their own event_id (an id to squat)",
      () =>
        delivery("acme", {
          ...started(),
          events: [{ event_id: crypto.randomUUID(), event: started().events[0]?.event }],
        }),
      { status: 400, code: "invalid_request" },
    ],
    [
      "a source limited to type order creates an invoice stream (row 2)",
      () => delivery("orders", { ...started(), stream_type: "invoice" }),
      { status: 403, code: "forbidden" },
    ],
    [
      "a source limited to type order creates a workflow stream (row 2)",
      () => delivery("orders", started()),
      { status: 403, code: "forbidden" },
    ],
    [
      "a source limited to one stream writes another (row 2)",
      () => delivery("one-stream", started()),
      { status: 403, code: "forbidden" },
    ],
  ];
  return probes.map(([what, request, answer]) => ({ category: "webhooks", what, request, answer }));
}

function inputProbes(): Probe[] {
  const admin = bearer(ADMIN);
  const bad = { status: 400, code: "invalid_request" };
  const probes: Array<[string, (context: ProbeContext) => ProbeRequest, { status: number; code: string }]> =
    [];
  const queries: Array<[string, string]> = [
    ["/streams?type=a%00b", "U+0000 in type (row 4)"],
    ["/streams?type=%00", "only U+0000 in type (row 4)"],
    ["/streams?type=%ED%A0%80", "a lone surrogate's bytes in type"],
    ["/streams?type=%C3%BC", "a non-ASCII type"],
    ["/streams?type=a;DROP%20TABLE%20workflow_events", "SQL in type"],
    ["/streams?status=running%00", "U+0000 in status"],
    ["/streams?cursor=%00", "U+0000 in cursor"],
    ["/streams?cursor=' OR '1'='1", "SQL in cursor"],
    ["/streams?limit=1e3", "an exponent in limit"],
    ["/streams?limit=-1", "a negative limit"],
    ["/streams/{stream}/events?from=1%00", "U+0000 in from"],
    ["/streams/{stream}/events?from=99999999999999999999", "a from beyond 2^53"],
    ["/streams/{stream}/events?direction=sideways", "an unknown direction"],
    ["/streams/{stream}/state?at=%00", "U+0000 in at"],
    ["/streams/{stream}/state?at=-1", "a negative at"],
  ];
  for (const [path, what] of queries) {
    probes.push([
      what,
      ({ workflowStream }) => ({
        method: "GET",
        path: path.replace("{stream}", workflowStream),
        headers: admin,
      }),
      bad,
    ]);
  }
  for (const id of [
    "not-a-uuid",
    "%00",
    "0b8f1d2e3c4a4b5c8d6e7f8091a2b3c4",
    "{0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4}",
  ]) {
    probes.push([
      `a stream id ${JSON.stringify(id)}`,
      () => ({ method: "GET", path: `/streams/${id}`, headers: admin }),
      bad,
    ]);
  }
  const bodies: Array<[string, string]> = [
    [
      "U+0000 in an event value",
      '{"events":[{"event":{"type":"context_updated","key":"k","value":"a\\u0000b"}}]}',
    ],
    [
      "U+0000 in a metadata key",
      '{"events":[{"event":{"type":"context_updated","key":"k","value":1},"metadata":{"a\\u0000":1}}]}',
    ],
    [
      "a lone surrogate in an event key",
      '{"events":[{"event":{"type":"context_updated","key":"\\ud800","value":1}}]}',
    ],
    [
      "U+0000 in stream_type",
      `{"stream_type":"a\\u0000","events":${JSON.stringify(JSON.parse(startBody).events)}}`,
    ],
    [
      "a __proto__ key in an event's value, on a stream not started",
      '{"events":[{"event":{"type":"context_updated","key":"__proto__","value":{"__proto__":{"admin":true}}}}]}',
    ],
    [
      "expected_version beyond 2^53",
      `{"expected_version":9007199254740993,"events":${JSON.stringify(JSON.parse(appendBody).events)}}`,
    ],
    ["an unknown event type", '{"events":[{"event":{"type":"drop_table"}}]}'],
    [
      "JSON nested 200 deep",
      `{"events":[{"event":{"type":"context_updated","key":"k","value":${"[".repeat(200)}${"]".repeat(200)}}}]}`,
    ],
  ];
  for (const [what, body] of bodies) {
    // Nothing to pollute either way (a context value is data); this one meets the state rules first.
    const answer = what.startsWith("a __proto__") ? { status: 422, code: "invalid_event_sequence" } : bad;
    probes.push([
      what,
      () => ({
        method: "POST",
        path: `/streams/${crypto.randomUUID()}/events`,
        headers: { ...json, ...admin },
        body,
      }),
      answer,
    ]);
  }
  probes.push([
    "a body over 1 MiB",
    () => ({
      method: "POST",
      path: `/streams/${crypto.randomUUID()}/events`,
      headers: { ...json, ...admin },
      body: `{"events":[{"event":{"type":"context_updated","key":"k","value":"${"x".repeat(1_100_000)}"}}]}`,
    }),
    { status: 413, code: "too_large" },
  ]);
  probes.push([
    "an append sent as text/plain",
    () => ({
      method: "POST",
      path: `/streams/${crypto.randomUUID()}/events`,
      headers: { "content-type": "text/plain", ...admin },
      body: startBody,
    }),
    { status: 415, code: "unsupported_media_type" },
  ]);
  return probes.map(([what, request, answer]) => ({ category: "input", what, request, answer }));
}

function leakProbes(): Probe[] {
  const invoices = bearer(TEST_TOKENS.invoices);
  const forbidden = { status: 403, code: "forbidden" };
  const reads = [
    ["its head", ""],
    ["its state", "/state"],
    ["its state at version 1", "/state?at=1"],
    ["its events", "/events"],
    ["its last event", "/events?direction=backward&limit=1"],
  ];
  const probes: Probe[] = reads.map(([what, suffix]) => ({
    category: "leaks",
    what: `a token for invoices reads a workflow stream: ${what} (row 9)`,
    request: ({ workflowStream }) => ({
      method: "GET",
      path: `/streams/${workflowStream}${suffix}`,
      headers: invoices,
    }),
    answer: forbidden,
  }));
  for (const [what, body] of [
    ["a stale expected version (would say the actual one)", { expected_version: 7 }],
    ["another stream type (would say the stream's)", { stream_type: "invoice" }],
    ["no_stream (would say the version)", { expected_version: "no_stream" }],
  ] as const) {
    probes.push({
      category: "leaks",
      what: `a token for invoices appends to a workflow stream with ${what} (row 9)`,
      request: ({ workflowStream }) => ({
        method: "POST",
        path: `/streams/${workflowStream}/events`,
        headers: { ...json, ...invoices },
        body: JSON.stringify({ ...JSON.parse(appendBody), ...body }),
      }),
      answer: forbidden,
    });
  }
  probes.push({
    category: "leaks",
    what: "a source limited to type order appends to a workflow stream (row 9)",
    request: async ({ workflowStream }) =>
      delivery("orders", {
        stream_id: workflowStream,
        expected_version: 99,
        events: [{ event: { type: "context_updated", key: "k", value: 1 } }],
      }),
    answer: forbidden,
  });
  probes.push({
    category: "leaks",
    what: "a one-stream source appends to its own stream's neighbour",
    request: () =>
      delivery("one-stream", {
        stream_id: SOURCE_STREAM_ID.replace(/.$/, "0"),
        events: [{ event: { type: "context_updated", key: "k", value: 1 } }],
      }),
    answer: forbidden,
  });
  probes.push({
    category: "leaks",
    what: "an unknown path without a token (would tell what exists)",
    request: () => ({ method: "GET", path: "/admin", headers: {} }),
    answer: { status: 401, code: "unauthorized" },
  });
  return probes;
}

/** Every single-request probe. */
export const SECURITY_PROBES: readonly Probe[] = [
  ...authProbes(),
  ...webhookProbes(),
  ...inputProbes(),
  ...leakProbes(),
];

/** The probes of several requests, each a test of its own. */
export const SECURITY_SCENARIOS: readonly ProbeScenario[] = [
  {
    category: "webhooks",
    what: "the ids a delivery used to get, appended first by a token limited to its own stream (row 1)",
    requests: 3,
    answer: "the delivery 201, its events stored under new random ids",
  },
  {
    category: "webhooks",
    what: "forged content under those ids by a token that may append to the target (row 1)",
    requests: 3,
    answer: "the delivery 201, the sender's event stored after the forged one",
  },
  {
    category: "webhooks",
    what: "a redelivery with the same body, with another body, and to another stream (rows 1, 9)",
    requests: 4,
    answer: "200 with the first versions; 409 redelivery_mismatch twice, nothing written",
  },
  {
    category: "exhaustion",
    what: "a read token sends requests in bursts of 25 to unknown paths and random streams (row 3)",
    // At most: bursts until one answer is 429 (within 2 × the limit + 1), then three more.
    requests: Math.ceil((2 * WORKER_TIER_LIMITS.requestsPer10Seconds + 1) / 25) * 25 + 3,
    answer: "429 rate_limited with Retry-After: 10 once over the limit, before any actor or database work",
  },
  {
    category: "exhaustion",
    what: "one more watcher than WATCHERS_PER_STREAM on a stream, and than WATCHERS_PER_TOKEN for a token (row 3)",
    requests: 18,
    answer: "the extra one closed with 4429 and too_many_watchers; a place frees when one closes",
  },
  {
    category: "exhaustion",
    what: "bodies that stop arriving: an append and a webhook in workerd, an append over a real connection (row 3)",
    requests: 3,
    answer: "408 body_timeout after BODY_TIMEOUT_MS, nothing written",
  },
  {
    category: "exhaustion",
    what: "40 listings at once while the table is locked (row 3)",
    requests: 40,
    answer: "4 run, 16 wait their turn, the rest 503 busy with Retry-After: 1",
  },
  {
    category: "exhaustion",
    what: "/healthz 40 times in a row and 40 at once, without a token (row 6)",
    requests: 80,
    answer: "200 each; the database asked once per 5-second window",
  },
  {
    category: "leaks",
    what: "/healthz and every route of a Worker whose database role does not exist (row 5)",
    requests: 8,
    answer: "503 with a fixed sentence; the server's words only in the log",
  },
  {
    category: "leaks",
    what: "a watcher of a token for invoices on a workflow stream (row 9)",
    requests: 1,
    answer: "closed with 1008 and a message that names no type",
  },
  {
    category: "auth",
    what: "the local database bridge: a browser's Origin, Sec-Fetch-*, a wrong path, a foreign Host (row 8)",
    requests: 10,
    answer: "403 or 404 before any database session; the driver through the secret path works",
  },
];

/** The probes and scenarios of a category, and what they answer (status, or the scenario's words). */
export function probeSummary(): Array<{
  category: ProbeCategory;
  requests: number;
  answers: string[];
}> {
  return (Object.keys(PROBE_CATEGORIES) as ProbeCategory[]).map((category) => {
    const probes = SECURITY_PROBES.filter((probe) => probe.category === category);
    const scenarios = SECURITY_SCENARIOS.filter((scenario) => scenario.category === category);
    const byAnswer = new Map<string, number>();
    for (const { answer } of probes) {
      const key = `${answer.status}${answer.code === undefined ? "" : ` ${answer.code}`}`;
      byAnswer.set(key, (byAnswer.get(key) ?? 0) + 1);
    }
    return {
      category,
      requests: probes.length + scenarios.reduce((sum, scenario) => sum + scenario.requests, 0),
      answers: [
        ...[...byAnswer].map(([answer, count]) => `${count} × ${answer}`),
        ...scenarios.map((scenario) => `${scenario.what}: ${scenario.answer}`),
      ],
    };
  });
}

/**
 * The Security probes section of docs/reliability.md (written by `npm run soak`): the
 * counts by category and what each answers now, from the lists the tests run.
 */
export function securitySection(): string {
  const rows = probeSummary()
    .map(({ category, requests, answers }) => {
      const single = SECURITY_PROBES.filter((probe) => probe.category === category).length;
      return `| ${category} | ${PROBE_CATEGORIES[category]} | ${single} + ${requests - single} | ${answers.join("; ")} |`;
    })
    .join("\n");
  const total = probeSummary().reduce((sum, { requests }) => sum + requests, 0);
  return `## Security probes (issue 10)

What an attacker tried against \`npm start\` (436 requests: one token squatting a webhook's
event ids, sources writing any stream, a read token taking every database connection,
internals in error details, an open database bridge), replayed as tests, each failing
before its fix: \`test/worker/security.test.ts\` (its probe catalogue is
\`test/support/security-probes.ts\`, every probe sent and its answer checked),
\`test/worker/security-limits.test.ts\` (row 3, in a Worker with limits it can reach) and
\`test/e2e/security.test.ts\` (the database bridge, sessions counted at the database, a slow
body over a real connection). ${total} requests in all; none is answered 2xx where it
should be refused, none 5xx but the 503s listed, none with a database's own words.

| category | what is tried | requests (single probes + in scenarios) | what each answers now |
| --- | --- | --- | --- |
${rows}
`;
}
