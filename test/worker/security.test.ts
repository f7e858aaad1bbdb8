import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { contextUpdated, started } from "../support/event-builders";
import {
  type AppendResult,
  api,
  appendOk,
  type EventsPageResult,
  expectJson,
  expectNoStream,
  expectProblem,
  getJson,
  type Problem,
  problemCode,
  type StateResult,
} from "../support/http-client";
import { type ProbeContext, SECURITY_PROBES } from "../support/security-probes";
import {
  adminAuthorization,
  LIMITED_STREAM_ID,
  SOURCE_STREAM_ID,
  TEST_TOKENS,
  TEST_WEBHOOK_SOURCES,
} from "../support/test-tokens";
import { webhookHeaders } from "../support/webhook-signing";

// Issue 10 (security hardening), row by row, through real requests into the Worker:
// each test replays what an attacker did and checks what the Worker answers now.
// Row 3's bounds are in security-limits.test.ts (its own Worker, with limits it can
// reach); the rows that need real sockets (the database bridge, sessions counted at it)
// are in test/e2e/security.test.ts.

const BASE = "http://glyph.test";
const variables = env as unknown as Record<string, string>;

/** Sends `request` to the Worker with `overrides` on top of the test configuration (as another deployment would). */
async function fetchWith(overrides: Record<string, string>, request: Request): Promise<Response> {
  const context = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...overrides }, context);
  await waitOnExecutionContext(context);
  return response;
}

/** The JSON lines written through `spy` whose event is `event`. */
function logLines(spy: { mock: { calls: unknown[][] } }, event: string): Array<Record<string, unknown>> {
  return spy.mock.calls
    .map(([line]) => {
      try {
        return JSON.parse(String(line)) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((line) => line.event === event);
}

afterEach(() => {
  vi.restoreAllMocks();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const newWebhookId = () => `msg_${crypto.randomUUID().replaceAll("-", "")}`;

/** Signs `body` with the source's first secret and delivers it, as the source's system would. */
async function deliver(
  source: keyof typeof TEST_WEBHOOK_SOURCES,
  body: Record<string, unknown>,
  webhookId: string = newWebhookId(),
): Promise<Response> {
  const entry = TEST_WEBHOOK_SOURCES[source];
  const secret = Array.isArray(entry) ? entry[0] : (entry as { secrets: readonly string[] }).secrets[0];
  const text = JSON.stringify(body);
  const headers = await webhookHeaders(secret ?? "", webhookId, text);
  return SELF.fetch(`${BASE}/webhooks/${source}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: text,
  });
}

/**
 * What anyone could compute before issue 10: the id the Worker gave event `index` of a
 * delivery (SHA-256 of source, webhook-id and position, as a version 8 UUID).
 */
async function formerlyDerivedEventId(source: string, webhookId: string, index: number): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${source}\n${webhookId}\n${index}`),
  );
  const bytes = new Uint8Array(digest, 0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function eventsOf(streamId: string): Promise<EventsPageResult["events"]> {
  return (await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=1000`)).events;
}

/** The problem's members beyond the standard ones (type, title, status, detail, instance). */
function extraMembers(problem: Problem): string[] {
  return Object.keys(problem).filter(
    (key) => !["type", "title", "status", "detail", "instance"].includes(key),
  );
}

describe("row 1: nobody can claim a webhook's events before the sender delivers them", () => {
  it("a token limited to its own stream appends the ids a delivery used to get: the delivery is still written (201)", async () => {
    const webhookId = newWebhookId();
    const squatter = bearer(TEST_TOKENS.oneStream);
    // The squatter's own stream, started once (idempotent on its event id, whatever ran before).
    const start = await api(`/streams/${LIMITED_STREAM_ID}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...squatter },
      body: JSON.stringify({
        events: [{ event_id: "00000000-0000-4000-8000-00000000a001", event: started() }],
      }),
    });
    expect([200, 201]).toContain(start.status);
    const claimed = [
      await formerlyDerivedEventId("acme", webhookId, 0),
      await formerlyDerivedEventId("acme", webhookId, 1),
    ];
    const squat = await api(`/streams/${LIMITED_STREAM_ID}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...squatter },
      body: JSON.stringify({
        events: claimed.map((event_id, index) => ({
          event_id,
          event: contextUpdated(`squat${index}`, index),
        })),
      }),
    });
    expect(squat.status).toBe(201);

    const target = crypto.randomUUID();
    const delivered = await expectJson<AppendResult>(
      await deliver(
        "acme",
        { stream_id: target, events: [{ event: started() }, { event: contextUpdated("approved", true) }] },
        webhookId,
      ),
      201,
    );
    expect(delivered.versions).toEqual([1, 2]);
    expect(delivered.event_ids.some((id) => claimed.includes(id))).toBe(false);
    const stored = await eventsOf(target);
    expect(stored.map((event) => event.event_id)).toEqual(delivered.event_ids);
  });

  it("a token that can append to the target stream writes forged content under those ids: the sender's event is still stored", async () => {
    const target = crypto.randomUUID();
    await appendOk(target, { events: [{ event: started() }] });
    const webhookId = newWebhookId();
    const forged = await appendOk(target, {
      events: [
        {
          event_id: await formerlyDerivedEventId("acme", webhookId, 0),
          event: contextUpdated("approved", false),
        },
      ],
    });
    expect(forged.versions).toEqual([2]);

    const response = await deliver(
      "acme",
      { stream_id: target, events: [{ event: contextUpdated("approved", true) }] },
      webhookId,
    );
    const delivered = await expectJson<AppendResult>(response, 201);
    expect(delivered).toMatchObject({ versions: [3], idempotent: false });
    const state = await getJson<StateResult>(`/streams/${target}/state`);
    expect(state.state.context).toEqual({ approved: true });
  });

  it("webhook events get random ids (version 4), new on every message", async () => {
    const target = crypto.randomUUID();
    const body = { stream_id: target, events: [{ event: started() }] };
    const first = await expectJson<AppendResult>(await deliver("acme", body), 201);
    expect(first.event_ids[0]).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    const again = await expectJson<AppendResult>(
      await deliver("acme", { stream_id: target, events: [{ event: contextUpdated("n", 1) }] }),
      201,
    );
    expect(again.event_ids).not.toEqual(first.event_ids);
  });

  it("a redelivery with the same body answers 200 with the first versions; with another body 409, writing nothing", async () => {
    const target = crypto.randomUUID();
    const webhookId = newWebhookId();
    const body = {
      stream_id: target,
      events: [{ event: started() }, { event: contextUpdated("amount", 10) }],
    };
    const first = await expectJson<AppendResult>(await deliver("acme", body, webhookId), 201);
    const repeat = await expectJson<AppendResult>(await deliver("acme", body, webhookId), 200);
    expect(repeat).toEqual({ ...first, idempotent: true });

    const altered = { stream_id: target, events: [{ event: contextUpdated("amount", 1_000_000) }] };
    const problem = await expectProblem(await deliver("acme", altered, webhookId), 409);
    expect(problemCode(problem)).toBe("redelivery_mismatch");
    expect(problem.detail).toMatch(/delivered before with a different body/);
    expect(extraMembers(problem)).toEqual([]);
    const elsewhere = crypto.randomUUID();
    const moved = await expectProblem(
      await deliver("acme", { ...body, stream_id: elsewhere }, webhookId),
      409,
    );
    expect(problemCode(moved)).toBe("redelivery_mismatch");
    expect((await eventsOf(target)).map((event) => event.event_id)).toEqual(first.event_ids);
    await expectNoStream(elsewhere);
  });

  it("costs no round trip of its own: a first delivery, a redelivery and a mismatch are one statement each", async () => {
    const target = crypto.randomUUID();
    await appendOk(target, { events: [{ event: started() }] });
    const actor = env.STREAM_ACTOR.get(env.STREAM_ACTOR.idFromName(target));
    const statements = async () => (await actor.stats()).statements;
    const webhookId = newWebhookId();
    const body = { stream_id: target, events: [{ event: contextUpdated("n", 1) }] };
    for (const [send, status] of [
      [() => deliver("acme", body, webhookId), 201],
      [() => deliver("acme", body, webhookId), 200],
      [() => deliver("acme", { ...body, events: [{ event: contextUpdated("n", 2) }] }, webhookId), 409],
    ] as const) {
      const before = await statements();
      expect((await send()).status).toBe(status);
      expect(await statements()).toBe(before + 1);
    }
  });
});

describe("row 2: a webhook source is scoped like a token", () => {
  it("a source limited to stream types cannot create or append to a stream of another type", async () => {
    const invoice = crypto.randomUUID();
    const refused = await expectProblem(
      await deliver("orders", { stream_id: invoice, stream_type: "invoice", events: [{ event: started() }] }),
      403,
    );
    expect(problemCode(refused)).toBe("forbidden");
    await expectNoStream(invoice);
    const defaulted = crypto.randomUUID();
    await expectProblem(
      await deliver("orders", { stream_id: defaulted, events: [{ event: started() }] }),
      403,
    );
    await expectNoStream(defaulted);

    const workflow = crypto.randomUUID();
    await appendOk(workflow, { events: [{ event: started() }] });
    const onWorkflow = await expectProblem(
      await deliver("orders", { stream_id: workflow, events: [{ event: contextUpdated("k", 1) }] }),
      403,
    );
    expect(onWorkflow.detail).not.toMatch(/workflow/);
    expect((await eventsOf(workflow)).length).toBe(1);

    const order = crypto.randomUUID();
    const accepted = await expectJson<AppendResult>(
      await deliver("orders", { stream_id: order, stream_type: "order", events: [{ event: started() }] }),
      201,
    );
    expect(accepted.stream_type).toBe("order");
  });

  it("a source limited to streams cannot reach another stream", async () => {
    const other = crypto.randomUUID();
    const refused = await expectProblem(
      await deliver("one-stream", { stream_id: other, events: [{ event: started() }] }),
      403,
    );
    expect(refused.detail).toMatch(/source one-stream may not append to stream/);
    await expectNoStream(other);
    const own = await deliver("one-stream", {
      stream_id: SOURCE_STREAM_ID.toUpperCase(),
      events: [{ event: contextUpdated("seen", true) }],
    });
    // Its stream may or may not have been started by an earlier run: either way it was not refused for scope.
    expect([201, 422]).toContain(own.status);
  });

  it("a source without limits still reaches any stream and type, as before", async () => {
    const invoice = crypto.randomUUID();
    const response = await deliver("acme", {
      stream_id: invoice,
      stream_type: "invoice",
      events: [{ event: started() }],
    });
    expect((await expectJson<AppendResult>(response, 201)).stream_type).toBe("invoice");
  });
});

describe("row 7: a token in Sec-WebSocket-Protocol counts only on a WebSocket upgrade", () => {
  it("an append carrying bearer.<token> as a subprotocol, without an upgrade, is 401 and writes nothing", async () => {
    const streamId = crypto.randomUUID();
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/events`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "sec-websocket-protocol": `glyph-streams.v1, bearer.${TEST_TOKENS.admin}`,
      },
      body: JSON.stringify({ events: [{ event: started() }] }),
    });
    await expectProblem(response, 401, /Send a token/);
    await expectNoStream(streamId);
    for (const path of ["/streams", `/streams/${streamId}`, `/streams/${streamId}/state`]) {
      const read = await SELF.fetch(`${BASE}${path}`, {
        headers: { "sec-websocket-protocol": `glyph-streams.v1, bearer.${TEST_TOKENS.admin}` },
      });
      await expectProblem(read, 401, /Send a token/);
    }
  });
});

describe("row 9: a limited token learns nothing about a stream out of its scope", () => {
  it("answers 403 with no type, no version and no extra members, on every route", async () => {
    const workflow = crypto.randomUUID();
    await appendOk(workflow, { events: [{ event: started() }, { event: contextUpdated("k", 1) }] });
    const headers = bearer(TEST_TOKENS.invoices);
    for (const path of [
      `/streams/${workflow}`,
      `/streams/${workflow}/state`,
      `/streams/${workflow}/state?at=1`,
      `/streams/${workflow}/events`,
      `/streams/${workflow}/events?direction=backward&limit=1`,
    ]) {
      const problem = await expectProblem(await SELF.fetch(`${BASE}${path}`, { headers }), 403);
      expect(problemCode(problem)).toBe("forbidden");
      expect(problem.detail).not.toMatch(/workflow|version|\b2\b/);
      expect(extraMembers(problem)).toEqual([]);
    }
    for (const body of [
      { events: [{ event: contextUpdated("x", 1) }], expected_version: 7 },
      { events: [{ event: contextUpdated("x", 1) }], stream_type: "invoice" },
      { events: [{ event: started() }], expected_version: "no_stream" },
    ]) {
      const response = await SELF.fetch(`${BASE}/streams/${workflow}/events`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const problem = await expectProblem(response, 403);
      expect(problem.detail).not.toMatch(/workflow|version/);
      expect(extraMembers(problem)).toEqual([]);
    }
    expect((await eventsOf(workflow)).length).toBe(2);
  });

  it("a watcher out of scope is closed with 1008 and a message that names no type", async () => {
    const workflow = crypto.randomUUID();
    await appendOk(workflow, { events: [{ event: started() }] });
    const response = await SELF.fetch(`${BASE}/streams/${workflow}/watch?from=0`, {
      headers: { upgrade: "websocket", ...bearer(TEST_TOKENS.invoices) },
    });
    expect(response.status).toBe(101);
    const socket = response.webSocket;
    if (!socket) throw new Error("no socket");
    socket.accept();
    const messages: string[] = [];
    socket.addEventListener("message", (message) => messages.push(String(message.data)));
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })),
    );
    const { code, reason } = await closed;
    expect(code).toBe(1008);
    expect(messages.join(" ") + reason).not.toMatch(/workflow/);
    expect(messages.map((message) => JSON.parse(message).type)).toEqual(["error"]);
  });
});

describe("row 4: text PostgreSQL cannot hold in a query parameter", () => {
  const streamId = crypto.randomUUID();
  const cases: Array<[string, string]> = [
    ["/streams?type=a%00b", "type"],
    ["/streams?type=%00", "type"],
    ["/streams?type=invoice%00", "type"],
    ["/streams?type=%ED%A0%80", "type"],
    ["/streams?type=%C3%BC", "type"],
    ["/streams?status=running%00", "status"],
    ["/streams?cursor=%00", "cursor"],
    [`/streams/${streamId}/events?from=1%00`, "from"],
    [`/streams/${streamId}/events?limit=%00`, "limit"],
    [`/streams/${streamId}/state?at=%00`, "at"],
  ];
  for (const [path, parameter] of cases) {
    it(`GET ${path.replace(streamId, ":id")} is refused 400 naming ${parameter}, never 503`, async () => {
      const problem = await expectProblem(await api(path), 400);
      expect(problemCode(problem)).toBe("invalid_request");
      expect(problem.detail).toMatch(new RegExp(`\\b${parameter}\\b`));
    });
  }
});

describe("row 5: what the database says never reaches a client", () => {
  const wrongRole = new URL(variables.DATABASE_URL ?? "");
  wrongRole.username = "glyph_no_such_role";
  wrongRole.password = "not-the-password";
  const overrides = { DATABASE_URL: wrongRole.toString() };

  it("/healthz (open to anyone) answers a fixed sentence; the log has the cause", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await fetchWith(overrides, new Request(`${BASE}/healthz`));
    const problem = await expectProblem(response, 503);
    expect(problemCode(problem)).toBe("unavailable");
    expect(problem.detail).toBe(
      "The database did not answer; the operator can find the cause in the logs. Retry later.",
    );
    expect(JSON.stringify(problem)).not.toMatch(/glyph_no_such_role|role|password|authentication/i);
    const [line] = logLines(errors, "request_failed");
    expect(line).toMatchObject({ operation: "health", code: "unavailable" });
    expect(String(line?.cause)).toMatch(/glyph_no_such_role/);
  });

  it("a listing answers the fixed sentence of unavailable; the log has the cause", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await fetchWith(
      overrides,
      new Request(`${BASE}/streams?limit=1`, { headers: adminAuthorization }),
    );
    const problem = await expectProblem(response, 503);
    expect(problemCode(problem)).toBe("unavailable");
    expect(problem.detail).toBe(
      "The database is unavailable; retry the request, with the same event ids for an append.",
    );
    expect(JSON.stringify(problem)).not.toMatch(/glyph_no_such_role|password|authentication/i);
    expect(String(logLines(errors, "request_failed")[0]?.cause)).toMatch(/glyph_no_such_role/);
  });
});

describe("the probe catalogue (test/support/security-probes.ts): every probe answers as listed", () => {
  const context: ProbeContext = { workflowStream: crypto.randomUUID() };
  beforeAll(async () => {
    await appendOk(context.workflowStream, {
      events: [{ event: started() }, { event: contextUpdated("k", 1) }],
    });
  });
  for (const probe of SECURITY_PROBES) {
    it(`${probe.category}: ${probe.what}`, async () => {
      const request = await probe.request(context);
      const response = await SELF.fetch(`${BASE}${request.path}`, {
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      const text = await response.text();
      expect(response.status, text).toBe(probe.answer.status);
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      if (probe.answer.code !== undefined)
        expect(problemCode(JSON.parse(text) as Problem)).toBe(probe.answer.code);
    });
  }
  it("left the workflow stream as it was", async () => {
    expect((await eventsOf(context.workflowStream)).map((event) => event.version)).toEqual([1, 2]);
  });
});
