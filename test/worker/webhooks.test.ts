import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { verifySignature } from "../../src/webhooks/verify-webhook";
import { decodeBase64 } from "../../src/webhooks/webhook-secrets";
import { contextUpdated, started, stepActivated } from "../support/event-builders";
import {
  type AppendResult,
  api,
  BASE_URL,
  type EventsPageResult,
  expectJson,
  expectNoStream,
  expectProblem,
  getJson,
  type Problem,
  problemCode,
} from "../support/http-client";
import { signWebhook, webhookHeaders } from "../support/webhook-signing";

// POST /webhooks/:source through real HTTP requests into the Worker: Standard Webhooks
// signatures over the raw body, a 5-minute timestamp tolerance, per-source secrets that
// can rotate, and idempotency on (source, webhook-id) so a redelivery writes nothing twice.

/** The secrets vitest.config.ts gives the Worker (WEBHOOK_SECRETS), by source. */
const variables: Record<string, unknown> = { ...env };
const SECRETS = JSON.parse(String(variables.WEBHOOK_SECRETS ?? "{}")) as Record<string, string[]>;
const ACME = SECRETS.acme?.[0] ?? "";
const [ROTATING_OLD = "", ROTATING_NEW = ""] = SECRETS.rotating ?? [];
/** A well-formed secret that no source is configured with. */
const STRANGER = "whsec_c3RyYW5nZXIgc3RyYW5nZXIgc3RyYW5nZXIgISE=";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const now = () => Math.floor(Date.now() / 1000);
const newWebhookId = () => `msg_${crypto.randomUUID().replaceAll("-", "")}`;

/** A webhook body for a fresh stream (or the given one), as the exact text that is signed and sent. */
function payload(streamId: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    stream_id: streamId,
    events: [
      { event: started(), metadata: { from: "acme" } },
      // No timestamp: the server fills it in, as the append route does.
      { event: { type: "step_activated", step_id: "review", assigned_to: [] } },
    ],
    ...fields,
  });
}

/** Sends a webhook as an external system would: no bearer token, only the webhook headers. */
function postWebhook(source: string, body: string, headers: Record<string, string>): Promise<Response> {
  return SELF.fetch(`${BASE_URL}/webhooks/${source}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** Signs `body` with `secret` and sends it to /webhooks/:source. */
async function deliver(
  source: string,
  body: string,
  options: { secret?: string; webhookId?: string; timestamp?: number } = {},
): Promise<Response> {
  const headers = await webhookHeaders(
    options.secret ?? ACME,
    options.webhookId ?? newWebhookId(),
    body,
    options.timestamp ?? now(),
  );
  return postWebhook(source, body, { ...headers });
}

async function readAll(streamId: string): Promise<EventsPageResult["events"]> {
  return (await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=1000`)).events;
}

describe("the signing scheme", () => {
  // The example of the Standard Webhooks reference libraries (standard-webhooks/standard-webhooks).
  const vector = {
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
    signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  };

  it("matches the Standard Webhooks example, in the test helper and in the Worker's verifier", async () => {
    expect(await signWebhook(vector.secret, vector.id, vector.timestamp, vector.body)).toBe(vector.signature);
    const key = decodeBase64(vector.secret.slice("whsec_".length));
    expect(key).toBeDefined();
    const delivery = { id: vector.id, timestamp: vector.timestamp, signature: vector.signature };
    const body = new TextEncoder().encode(vector.body);
    expect(await verifySignature(delivery, body, key ? [key] : [])).toEqual({ ok: true });
    const tampered = new TextEncoder().encode('{"test": 2432232315}');
    expect((await verifySignature(delivery, tampered, key ? [key] : [])).ok).toBe(false);
  });
});

describe("a signed webhook", () => {
  it("appends its events: 201 with versions and new random (version 4) event ids, readable from the stream", async () => {
    const streamId = crypto.randomUUID();
    const response = await deliver("acme", payload(streamId));
    expect(response.headers.get("etag")).toBe('"2"');
    expect(response.headers.get("location")).toBe(`/streams/${streamId}/events?from=1`);
    const body = await expectJson<AppendResult>(response, 201);
    expect(body).toEqual({
      stream_id: streamId,
      stream_type: "workflow",
      version: 2,
      versions: [1, 2],
      event_ids: [expect.stringMatching(UUID_V4), expect.stringMatching(UUID_V4)],
      idempotent: false,
    });

    const events = await readAll(streamId);
    expect(events.map((event) => event.event_id)).toEqual(body.event_ids);
    expect(events.map((event) => event.event.type)).toEqual(["workflow_started", "step_activated"]);
    expect(events.map((event) => event.metadata)).toEqual([{ from: "acme" }, {}]);
    const activated = events[1]?.event as { activated_at?: string } | undefined;
    expect(activated?.activated_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
  });

  it("takes expected_version and stream_type as the append route does", async () => {
    const streamId = crypto.randomUUID();
    const first = await expectJson<AppendResult>(
      await deliver("acme", payload(streamId, { expected_version: "no_stream", stream_type: "order" })),
      201,
    );
    expect(first.stream_type).toBe("order");
    const stale = await deliver(
      "acme",
      JSON.stringify({
        stream_id: streamId,
        events: [{ event: contextUpdated("k", 1) }],
        expected_version: 1,
      }),
    );
    expect(problemCode(await expectProblem(stale, 409))).toBe("concurrency_conflict");
    const next = await deliver(
      "acme",
      JSON.stringify({
        stream_id: streamId,
        events: [{ event: contextUpdated("k", 1) }],
        expected_version: 2,
      }),
    );
    expect((await expectJson<AppendResult>(next, 201)).versions).toEqual([3]);
  });

  it("is accepted up to four minutes early or late", async () => {
    for (const skew of [-240, 240]) {
      const streamId = crypto.randomUUID();
      await expectJson<AppendResult>(
        await deliver("acme", payload(streamId), { timestamp: now() + skew }),
        201,
      );
    }
  });
});

describe("a redelivered webhook (the same webhook-id)", () => {
  it("appends once and answers every delivery with the same versions and event ids (200, idempotent)", async () => {
    const streamId = crypto.randomUUID();
    const webhookId = newWebhookId();
    const body = payload(streamId, { expected_version: "no_stream" });
    const first = await expectJson<AppendResult>(await deliver("acme", body, { webhookId }), 201);

    // A sender retrying signs each attempt with its own timestamp; the exact same request may come twice too.
    const headers = await webhookHeaders(ACME, webhookId, body, now() - 30);
    for (const response of [
      await postWebhook("acme", body, { ...headers }),
      await postWebhook("acme", body, { ...headers }),
      await deliver("acme", body, { webhookId }),
    ]) {
      const repeat = await expectJson<AppendResult>(response, 200);
      expect(repeat).toEqual({ ...first, idempotent: true });
    }
    expect((await readAll(streamId)).map((event) => event.version)).toEqual([1, 2]);
  });

  it("appends nothing twice even when the deliveries arrive together", async () => {
    const streamId = crypto.randomUUID();
    const webhookId = newWebhookId();
    const body = payload(streamId);
    const responses = await Promise.all(
      Array.from({ length: 4 }, () => deliver("acme", body, { webhookId })),
    );
    const results = await Promise.all(
      responses.map((response) => response.json() as Promise<AppendResult & { status?: number }>),
    );
    expect(responses.map((response) => response.status).sort()).toEqual([200, 200, 200, 201]);
    for (const result of results) expect(result.versions).toEqual([1, 2]);
    expect(new Set(results.map((result) => result.event_ids.join()))).toHaveProperty("size", 1);
    expect(await readAll(streamId)).toHaveLength(2);
  });

  it("differs from a new delivery with the same body: another webhook-id appends again", async () => {
    const streamId = crypto.randomUUID();
    const body = JSON.stringify({ stream_id: streamId, events: [{ event: contextUpdated("n", 1) }] });
    await expectJson<AppendResult>(await deliver("acme", payload(streamId)), 201);
    const a = await expectJson<AppendResult>(await deliver("acme", body), 201);
    const b = await expectJson<AppendResult>(await deliver("acme", body), 201);
    expect([a.versions, b.versions]).toEqual([[3], [4]]);
    expect(a.event_ids).not.toEqual(b.event_ids);
  });

  it("is known per source: the same webhook-id from two sources is two deliveries", async () => {
    const streamId = crypto.randomUUID();
    const webhookId = newWebhookId();
    const setup = payload(streamId);
    await expectJson<AppendResult>(await deliver("acme", setup), 201);
    const body = JSON.stringify({ stream_id: streamId, events: [{ event: contextUpdated("n", 1) }] });
    const fromAcme = await expectJson<AppendResult>(await deliver("acme", body, { webhookId }), 201);
    const fromRotating = await expectJson<AppendResult>(
      await deliver("rotating", body, { webhookId, secret: ROTATING_NEW }),
      201,
    );
    expect(fromAcme.event_ids).not.toEqual(fromRotating.event_ids);
  });

  it("to another stream is refused as a redelivery with another body (409), and writes nothing there", async () => {
    const webhookId = newWebhookId();
    await expectJson<AppendResult>(await deliver("acme", payload(crypto.randomUUID()), { webhookId }), 201);
    const other = crypto.randomUUID();
    const problem = await expectProblem(await deliver("acme", payload(other), { webhookId }), 409);
    expect(problemCode(problem)).toBe("redelivery_mismatch");
    await expectNoStream(other);
  });
});

describe("secret rotation", () => {
  it("accepts a signature made with any of the source's secrets", async () => {
    for (const secret of [ROTATING_OLD, ROTATING_NEW]) {
      const streamId = crypto.randomUUID();
      await expectJson<AppendResult>(await deliver("rotating", payload(streamId), { secret }), 201);
      expect(await readAll(streamId)).toHaveLength(2);
    }
  });

  it("accepts a header with several entries when only the last one matches", async () => {
    const streamId = crypto.randomUUID();
    const webhookId = newWebhookId();
    const timestamp = now();
    const body = payload(streamId);
    const wrong = await signWebhook(STRANGER, webhookId, timestamp, body);
    const right = await signWebhook(ROTATING_NEW, webhookId, timestamp, body);
    const response = await postWebhook("rotating", body, {
      "webhook-id": webhookId,
      "webhook-timestamp": String(timestamp),
      // A wrong v1 entry, an entry of another scheme (ignored), a v1 entry that is not base64, then the right one.
      "webhook-signature": `${wrong} v1a,${right.slice(3)} v1,%%%notbase64 ${right}`,
    });
    await expectJson<AppendResult>(response, 201);
  });
});

interface Refusal {
  name: string;
  /** Builds the request for a body naming `streamId`; the default is a good delivery to "acme". */
  send: (streamId: string) => Promise<Response>;
  status: number;
  code: string;
  detail: RegExp;
}

/** A good delivery to "acme" with its headers changed: a string replaces one, undefined removes it. */
async function withHeaders(
  streamId: string,
  change: (headers: Record<string, string>) => Record<string, string | undefined>,
): Promise<Response> {
  const body = payload(streamId);
  const signed: Record<string, string> = { ...(await webhookHeaders(ACME, newWebhookId(), body)) };
  const changed = change(signed);
  const headers = Object.fromEntries(
    Object.entries({ ...signed, ...changed }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  return postWebhook("acme", body, headers);
}

const REFUSALS: Refusal[] = [
  {
    name: "a tampered body",
    send: async (streamId) => {
      const body = payload(streamId);
      const headers = await webhookHeaders(ACME, newWebhookId(), body);
      return postWebhook("acme", body.replace('"review"', '"approve"'), { ...headers });
    },
    status: 401,
    code: "invalid_webhook_signature",
    detail: /No v1 entry of webhook-signature matches/,
  },
  {
    name: "a body re-serialised with other whitespace (the signature covers the exact bytes)",
    send: async (streamId) => {
      const body = payload(streamId);
      const headers = await webhookHeaders(ACME, newWebhookId(), body);
      return postWebhook("acme", JSON.stringify(JSON.parse(body), null, 2), { ...headers });
    },
    status: 401,
    code: "invalid_webhook_signature",
    detail: /exact bytes/,
  },
  {
    name: "a timestamp more than 5 minutes old",
    send: (streamId) => deliver("acme", payload(streamId), { timestamp: now() - 301 - 60 }),
    status: 401,
    code: "stale_webhook_timestamp",
    detail: /seconds in the past; it must be within 300 seconds/,
  },
  {
    name: "a timestamp more than 5 minutes ahead",
    send: (streamId) => deliver("acme", payload(streamId), { timestamp: now() + 301 + 60 }),
    status: 401,
    code: "stale_webhook_timestamp",
    detail: /seconds in the future/,
  },
  {
    name: "a timestamp in milliseconds",
    send: (streamId) => deliver("acme", payload(streamId), { timestamp: Date.now() }),
    status: 401,
    code: "stale_webhook_timestamp",
    detail: /in the future/,
  },
  {
    name: "a timestamp that is not whole seconds",
    send: (streamId) => withHeaders(streamId, () => ({ "webhook-timestamp": "2026-01-01T00:00:00Z" })),
    status: 401,
    code: "invalid_webhook_header",
    detail: /whole Unix seconds/,
  },
  {
    name: "a secret no source has",
    send: (streamId) => deliver("acme", payload(streamId), { secret: STRANGER }),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /No v1 entry/,
  },
  {
    name: "another source's secret",
    send: (streamId) => deliver("acme", payload(streamId), { secret: ROTATING_OLD }),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /No v1 entry/,
  },
  {
    name: "a signature for another webhook-id (the id is signed too)",
    send: (streamId) =>
      withHeaders(streamId, (headers) => ({ "webhook-id": `${headers["webhook-id"] ?? ""}x` })),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /No v1 entry/,
  },
  {
    name: "no webhook-id",
    send: (streamId) => withHeaders(streamId, () => ({ "webhook-id": undefined })),
    status: 401,
    code: "missing_webhook_header",
    detail: /webhook-id is missing/,
  },
  {
    name: "no webhook-timestamp",
    send: (streamId) => withHeaders(streamId, () => ({ "webhook-timestamp": undefined })),
    status: 401,
    code: "missing_webhook_header",
    detail: /webhook-timestamp is missing/,
  },
  {
    name: "no webhook-signature",
    send: (streamId) => withHeaders(streamId, () => ({ "webhook-signature": undefined })),
    status: 401,
    code: "missing_webhook_header",
    detail: /webhook-signature is missing/,
  },
  {
    name: "none of the three headers",
    send: (streamId) =>
      withHeaders(streamId, () => ({
        "webhook-id": undefined,
        "webhook-timestamp": undefined,
        "webhook-signature": undefined,
      })),
    status: 401,
    code: "missing_webhook_header",
    detail: /headers webhook-id, webhook-timestamp, webhook-signature are missing/,
  },
  {
    name: "a signature header without any v1 entry",
    send: (streamId) => withHeaders(streamId, () => ({ "webhook-signature": "not-a-signature" })),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /has no v1 entry/,
  },
  {
    name: "the right digest without its v1, prefix",
    send: (streamId) =>
      withHeaders(streamId, (headers) => ({
        "webhook-signature": (headers["webhook-signature"] ?? "").slice(3),
      })),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /has no v1 entry/,
  },
  {
    name: "the right digest under another version (v2)",
    send: (streamId) =>
      withHeaders(streamId, (headers) => ({
        "webhook-signature": (headers["webhook-signature"] ?? "").replace(/^v1,/, "v2,"),
      })),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /has no v1 entry/,
  },
  {
    name: "a v1 entry that is not base64",
    send: (streamId) => withHeaders(streamId, () => ({ "webhook-signature": "v1,***" })),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /No v1 entry/,
  },
  {
    name: "a truncated digest",
    send: (streamId) =>
      withHeaders(streamId, (headers) => ({
        "webhook-signature": (headers["webhook-signature"] ?? "").slice(0, 20),
      })),
    status: 401,
    code: "invalid_webhook_signature",
    detail: /No v1 entry/,
  },
  {
    name: "an unknown source",
    send: (streamId) => deliver("nobody", payload(streamId)),
    status: 404,
    code: "webhook_source_not_found",
    detail: /No webhook source named "nobody" is configured/,
  },
  {
    name: "a source name in upper case",
    send: (streamId) => deliver("ACME", payload(streamId)),
    status: 404,
    code: "webhook_source_not_found",
    detail: /configured/,
  },
];

describe("a webhook that cannot be verified is refused and writes nothing", () => {
  for (const refusal of REFUSALS) {
    it(refusal.name, async () => {
      const streamId = crypto.randomUUID();
      const problem = await expectProblem(await refusal.send(streamId), refusal.status, refusal.detail);
      expect(problemCode(problem)).toBe(refusal.code);
      expect(problem.instance).toMatch(/^\/webhooks\//);
      await expectNoStream(streamId);
    });
  }

  it("checks the signature before parsing: malformed JSON with a bad signature is a 401, not a 400", async () => {
    const unsigned = await postWebhook("acme", '{"stream_id": ', {
      "webhook-id": newWebhookId(),
      "webhook-timestamp": String(now()),
      "webhook-signature": await signWebhook(STRANGER, "x", now(), "y"),
    });
    expect(problemCode(await expectProblem(unsigned, 401))).toBe("invalid_webhook_signature");
    const signed = await deliver("acme", '{"stream_id": ');
    await expectProblem(signed, 400, /not valid JSON/);
  });
});

describe("a verified webhook with a bad body", () => {
  const cases: Array<{ name: string; body: (streamId: string) => string; status: number; detail: RegExp }> = [
    {
      name: "no stream_id",
      body: () => JSON.stringify({ events: [{ event: started() }] }),
      status: 400,
      detail: /stream_id/,
    },
    {
      name: "an event with its own event_id",
      body: (streamId) =>
        JSON.stringify({
          stream_id: streamId,
          events: [{ event: started(), event_id: crypto.randomUUID() }],
        }),
      status: 400,
      detail: /events\.0\.event_id: leave event_id out/,
    },
    {
      name: "an event the workflow rules refuse",
      body: (streamId) =>
        JSON.stringify({ stream_id: streamId, events: [{ event: stepActivated("early") }] }),
      status: 422,
      detail: /step_activated/,
    },
    {
      name: "no events",
      body: (streamId) => JSON.stringify({ stream_id: streamId, events: [] }),
      status: 400,
      detail: /at least one event/,
    },
  ];
  for (const bad of cases) {
    it(`is refused: ${bad.name}`, async () => {
      const streamId = crypto.randomUUID();
      await expectProblem(await deliver("acme", bad.body(streamId)), bad.status, bad.detail);
      await expectNoStream(streamId);
    });
  }

  it("is refused as not JSON (415) when its content type is not application/json", async () => {
    const streamId = crypto.randomUUID();
    const body = payload(streamId);
    const headers = await webhookHeaders(ACME, newWebhookId(), body);
    const response = await postWebhook("acme", body, { ...headers, "content-type": "text/plain" });
    await expectProblem(response, 415, /Content-Type: application\/json/);
    await expectNoStream(streamId);
  });

  it("is refused as too large (413) above the append route's body limit", async () => {
    const streamId = crypto.randomUUID();
    const body = payload(streamId, { padding: "x".repeat(1024 * 1024) });
    const problem = await expectProblem(await deliver("acme", body), 413, /larger than 1048576 bytes/);
    expect(problemCode(problem)).toBe("too_large");
    await expectNoStream(streamId);
  });
});

describe("a misconfigured WEBHOOK_SECRETS", () => {
  const MALFORMED: Array<[string, string]> = [
    ["not JSON", "{acme: whsec_abc}"],
    ["a list instead of an object", '["whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="]'],
    ["a secret without the whsec_ prefix", '{"acme": ["GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="]}'],
    ["a secret that is not base64", '{"acme": ["whsec_not base64!"]}'],
    ["a secret instead of a list", '{"acme": "whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="}'],
    ["an empty list", '{"acme": []}'],
    ["a source name in upper case", '{"Acme": ["whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="]}'],
  ];
  for (const [name, config] of MALFORMED) {
    it(`answers 503, never 500: ${name}`, async () => {
      const body = payload(crypto.randomUUID());
      const headers = await webhookHeaders(ACME, newWebhookId(), body);
      const request = new Request(`${BASE_URL}/webhooks/acme`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      });
      const context = createExecutionContext();
      const misconfigured = { ...env, WEBHOOK_SECRETS: config };
      const response = await worker.fetch(request, misconfigured, context);
      await waitOnExecutionContext(context);
      const problem: Problem = await expectProblem(response, 503, /WEBHOOK_SECRETS\) is invalid/);
      expect(problemCode(problem)).toBe("webhooks_misconfigured");
      expect(JSON.stringify(problem)).not.toContain("GhloRf6y");
    });
  }
});

describe("the API description", () => {
  it("documents POST /webhooks/{source} with its headers, body and refusals", async () => {
    const doc = await getJson<{
      paths: Record<
        string,
        Record<string, { parameters?: Array<{ name: string; in: string }>; responses: object }>
      >;
    }>("/openapi.json");
    const operation = doc.paths["/webhooks/{source}"]?.post;
    expect(operation).toBeDefined();
    expect(operation?.parameters?.map((parameter) => `${parameter.in}:${parameter.name}`)).toEqual(
      expect.arrayContaining([
        "path:source",
        "header:webhook-id",
        "header:webhook-timestamp",
        "header:webhook-signature",
      ]),
    );
    expect(Object.keys(operation?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "201", "401", "404", "413", "503"]),
    );
  });

  it("answers 405 for another method at a webhook path", async () => {
    const response = await api("/webhooks/acme");
    await expectProblem(response, 405);
    expect(response.headers.get("allow")).toBe("POST");
  });
});
