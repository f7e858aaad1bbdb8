import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  backoffDelay,
  ConditionFailed,
  ConflictError,
  EventConflict,
  Forbidden,
  GlyphClient,
  InvalidRequest,
  NotFound,
  ProtocolError,
  RuleViolation,
  retryAfterMs,
  TooLarge,
  Unauthorized,
  Unavailable,
} from "../../client/index";

// The client's retries and error mapping against a real local HTTP server (no mocks of fetch).

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;
let server: Server | undefined;
afterEach(async () => {
  const running = server;
  server = undefined;
  if (running === undefined) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
});

async function serve(handler: Handler): Promise<string> {
  const created = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => handler(request, body, response));
  });
  server = created;
  await new Promise<void>((resolve) => created.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(created.address() as AddressInfo).port}`;
}

const json = (
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  response.writeHead(status, {
    "content-type": status < 300 ? "application/json" : "application/problem+json",
    ...headers,
  });
  response.end(JSON.stringify(body));
};

const problem = (status: number, code: string, extras: Record<string, unknown> = {}) => ({
  type: `urn:glyph-streams:problem:${code}`,
  title: code,
  status,
  detail: `the ${code} sentence`,
  ...extras,
});

const STREAM = "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4";
const event = { type: "context_updated" as const, key: "k", value: 1 };
const fast = { attempts: 5, baseMs: 1, maxMs: 5, timeoutMs: 300 };

function appended(body: string) {
  const sent = JSON.parse(body) as { events: { event_id: string }[] };
  return {
    stream_id: STREAM,
    stream_type: "workflow",
    version: sent.events.length,
    versions: sent.events.map((_, i) => i + 1),
    event_ids: sent.events.map((e) => e.event_id),
    idempotent: false,
  };
}

describe("backoff", () => {
  it("grows exponentially under a cap, with full jitter, never below Retry-After", () => {
    const options = { baseMs: 100, maxMs: 5000 };
    expect(backoffDelay(0, options, 0, () => 0.999)).toBe(99);
    expect(backoffDelay(3, options, 0, () => 0.5)).toBe(400);
    expect(backoffDelay(20, options, 0, () => 0.999)).toBe(4995);
    expect(backoffDelay(0, options, 0, () => 0)).toBe(0);
    expect(backoffDelay(0, options, 1000, () => 0)).toBe(1000);
    expect(backoffDelay(0, options, 60_000, () => 0)).toBe(5000);
  });

  it("reads Retry-After as seconds or a date", () => {
    expect(retryAfterMs("1")).toBe(1000);
    expect(retryAfterMs(null)).toBe(0);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
  });
});

describe("append retries", () => {
  it("resends the same event ids after 503s and a timeout, then returns the versions", async () => {
    const bodies: string[] = [];
    const url = await serve((_request, body, response) => {
      bodies.push(body);
      if (bodies.length === 1)
        return json(response, 503, problem(503, "unavailable"), { "retry-after": "0" });
      if (bodies.length === 2) return; // no answer: the client's timeout
      json(response, 201, appended(body));
    });
    const client = new GlyphClient({ url, token: "t", retry: fast });
    const result = await client.append(STREAM, [event, { event, metadata: { by: "me" } }], {
      expectedVersion: 3,
    });
    expect(bodies).toHaveLength(3);
    const ids = bodies.map((body) =>
      (JSON.parse(body) as { events: { event_id: string }[] }).events.map((e) => e.event_id),
    );
    expect(new Set(ids.map((list) => list.join())).size).toBe(1);
    expect(result.event_ids).toEqual(ids[0]);
    expect(JSON.parse(bodies[0] ?? "")).toMatchObject({
      expected_version: 3,
      events: [{ event }, { event, metadata: { by: "me" } }],
    });
  });

  it("gives up with Unavailable when every attempt fails, and on a refused connection", async () => {
    let requests = 0;
    const url = await serve((_request, _body, response) => {
      requests++;
      json(response, 503, problem(503, "unavailable"));
    });
    await expect(new GlyphClient({ url, retry: fast }).append(STREAM, [event])).rejects.toBeInstanceOf(
      Unavailable,
    );
    expect(requests).toBe(5);
    await expect(
      new GlyphClient({ url: "http://127.0.0.1:9", retry: fast }).head(STREAM),
    ).rejects.toBeInstanceOf(Unavailable);
  });
});

describe("errors", () => {
  const cases = [
    [400, "invalid_request", InvalidRequest],
    [401, "unauthorized", Unauthorized],
    [403, "forbidden", Forbidden],
    [404, "stream_not_found", NotFound],
    [409, "idempotency_conflict", EventConflict],
    [413, "too_large", TooLarge],
    [422, "invalid_event_sequence", RuleViolation],
  ] as const;
  for (const [status, code, Class] of cases) {
    it(`${status} ${code} is a ${Class.name}, not retried, with the problem's sentence`, async () => {
      let requests = 0;
      const url = await serve((_request, _body, response) => {
        requests++;
        json(response, status, problem(status, code));
      });
      const error = await new GlyphClient({ url, retry: fast })
        .append(STREAM, [event])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Class);
      expect(error).toMatchObject({ status, code, message: `the ${code} sentence` });
      expect(requests).toBe(1);
    });
  }

  it("a version conflict carries expected and actual; a failed condition its state, unmet and version", async () => {
    let next = problem(409, "concurrency_conflict", { expected: 2, actual: 5 });
    const url = await serve((_request, _body, response) => json(response, next.status, next));
    const client = new GlyphClient({ url, retry: fast });
    const conflict = await client.append(STREAM, [event]).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ expected: 2, actual: 5 });
    next = problem(412, "condition_failed", { state: { status: "running" }, unmet: ["/status"], version: 4 });
    const failed = await client
      .append(STREAM, [event], { if: { status: "completed" } })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ConditionFailed);
    expect(failed).toMatchObject({ state: { status: "running" }, unmet: ["/status"], version: 4 });
  });

  it("an answer the schemas refuse is a ProtocolError", async () => {
    const url = await serve((_request, _body, response) =>
      json(response, 200, { stream_id: STREAM, version: "two" }),
    );
    await expect(new GlyphClient({ url, retry: fast }).head(STREAM)).rejects.toBeInstanceOf(ProtocolError);
  });
});

describe("subscriptions", () => {
  const status = (name: string, extras: Record<string, unknown> = {}) => ({
    name,
    url: "https://example.com/hooks",
    event_types: null,
    stream_types: ["workflow"],
    batch_size: 1,
    status: "active",
    checkpoint: "MC4w",
    lag: { events: 0, seconds: 0 },
    last_delivery_at: null,
    last_error: null,
    last_error_at: null,
    attempts: 0,
    next_attempt_at: null,
    dead_letters: 0,
    created_at: "2026-01-01T00:00:00.000Z",
    ...extras,
  });
  const letter = (id: number) => ({
    id,
    webhook_id: `msg_${id}`,
    events: [],
    first_attempt_at: "2026-01-01T00:00:00.000Z",
    dead_at: "2026-01-02T00:00:00.000Z",
    attempts: 9,
    last_error: "HTTP 500",
    redrive_requested: false,
  });

  it("putSubscription sends the settings as the API names them; a 201 carries the secret, a 200 does not", async () => {
    const requests: { method: string; url: string; body: string }[] = [];
    const url = await serve((request, body, response) => {
      requests.push({ method: request.method ?? "", url: request.url ?? "", body });
      if (requests.length === 1) json(response, 201, { ...status("billing"), secret: "whsec_abc" });
      else json(response, 200, status("billing", { batch_size: 10 }));
    });
    const client = new GlyphClient({ url, token: "t", retry: fast });
    const created = await client.putSubscription("billing", {
      url: "https://example.com/hooks",
      streamType: "workflow",
      eventType: ["workflow_completed", "workflow_failed"],
      from: "start",
      batchSize: 1,
    });
    expect(created).toMatchObject({ created: true, secret: "whsec_abc", name: "billing", status: "active" });
    const changed = await client.putSubscription("billing", {
      url: "https://example.com/hooks",
      batchSize: 10,
    });
    expect(changed).toMatchObject({ created: false, batch_size: 10 });
    expect("secret" in changed).toBe(false);
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      "PUT /subscriptions/billing",
      "PUT /subscriptions/billing",
    ]);
    expect(JSON.parse(requests[0]?.body ?? "")).toEqual({
      url: "https://example.com/hooks",
      stream_types: ["workflow"],
      event_types: ["workflow_completed", "workflow_failed"],
      from: "start",
      batch_size: 1,
    });
    expect(JSON.parse(requests[1]?.body ?? "")).toEqual({ url: "https://example.com/hooks", batch_size: 10 });
  });

  it("deleteSubscription takes a 204 with no body; a 404 is NotFound with the problem's code", async () => {
    let first = true;
    const url = await serve((_request, _body, response) => {
      if (first) {
        first = false;
        response.writeHead(204);
        return response.end();
      }
      json(response, 404, problem(404, "subscription_not_found"));
    });
    const client = new GlyphClient({ url, retry: fast });
    await expect(client.deleteSubscription("billing")).resolves.toBeUndefined();
    const error = await client.deleteSubscription("billing").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFound);
    expect(error).toMatchObject({ status: 404, code: "subscription_not_found" });
  });

  it("deadLetters follows the pages' cursors; pause, resume, replay and redrive send what the routes take", async () => {
    const requests: string[] = [];
    const url = await serve((request, body, response) => {
      requests.push(`${request.method} ${request.url} ${body}`.trim());
      const path = new URL(request.url ?? "", "http://x");
      if (path.pathname.endsWith("/dead-letters")) {
        const after = Number(path.searchParams.get("after") ?? 0);
        return json(response, 200, {
          dead_letters: after < 4 ? [letter(after + 1), letter(after + 2)] : [letter(5)],
          next: after < 4 ? String(after + 2) : null,
        });
      }
      if (path.pathname.endsWith("/redrive")) return json(response, 202, { name: "billing", redriven: 2 });
      json(
        response,
        200,
        status("billing", { status: path.pathname.endsWith("/pause") ? "paused" : "active" }),
      );
    });
    const client = new GlyphClient({ url, retry: fast });
    const ids: number[] = [];
    for await (const dead of client.deadLetters("billing", { limit: 2 })) ids.push(dead.id);
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect((await client.pauseSubscription("billing")).status).toBe("paused");
    expect((await client.resumeSubscription("billing")).status).toBe("active");
    await client.replaySubscription("billing", "start");
    expect(await client.redriveDeadLetters("billing", { ids: [3, 4] })).toEqual({
      name: "billing",
      redriven: 2,
    });
    await client.redriveDeadLetters("billing");
    expect(requests).toEqual([
      "GET /subscriptions/billing/dead-letters?limit=2",
      "GET /subscriptions/billing/dead-letters?after=2&limit=2",
      "GET /subscriptions/billing/dead-letters?after=4&limit=2",
      "POST /subscriptions/billing/pause",
      "POST /subscriptions/billing/resume",
      'POST /subscriptions/billing/replay {"from":"start"}',
      'POST /subscriptions/billing/dead-letters/redrive {"ids":[3,4]}',
      "POST /subscriptions/billing/dead-letters/redrive {}",
    ]);
  });

  it("a status the schema refuses is a ProtocolError", async () => {
    const url = await serve((_request, _body, response) =>
      json(response, 200, { subscriptions: [{ name: "billing", status: "sleeping" }] }),
    );
    await expect(new GlyphClient({ url, retry: fast }).subscriptions()).rejects.toBeInstanceOf(ProtocolError);
  });
});

it("bundles for a browser: nothing from Node or the Workers runtime", async () => {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [fileURLToPath(new URL("../../client/index.ts", import.meta.url))],
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    metafile: true,
    logLevel: "silent",
  });
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs.filter((path) => /^(node:|cloudflare:)/.test(path))).toEqual([]);
  expect(inputs.filter((path) => path.startsWith("scripts/") || path.includes("/db/"))).toEqual([]);
});
