import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { LIMITED_STREAM_ID, TEST_TOKENS } from "../support/test-tokens";

// Access control through real HTTP into the Worker. The Worker knows only the
// tokens' hashes (AUTH_TOKENS in vitest.config.ts).

const BASE = "http://glyph.test";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function expectProblem(response: Response, status: number, detail: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = (await response.json()) as { status: number; detail: string };
  expect(body.status).toBe(status);
  expect(body.detail).toMatch(detail);
  if (status === 401) expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
}

function appendBody(type = "workflow_started", streamType?: string): string {
  return JSON.stringify({
    ...(streamType === undefined ? {} : { stream_type: streamType }),
    events: [{ event: { type, workflow_id: crypto.randomUUID(), config_version: "v1" } }],
  });
}

async function createStream(streamType?: string, streamId: string = crypto.randomUUID()): Promise<string> {
  const response = await SELF.fetch(`${BASE}/streams/${streamId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...bearer(TEST_TOKENS.admin) },
    body: appendBody("workflow_started", streamType),
  });
  expect(response.status).toBe(201);
  return streamId;
}

describe("every route but /healthz, /openapi.json and the webhooks needs a valid token", async () => {
  const streamId = crypto.randomUUID();
  const routes: Array<{ method: string; path: string; body?: string }> = [
    { method: "GET", path: "/streams" },
    { method: "GET", path: `/streams/${streamId}` },
    { method: "GET", path: `/streams/${streamId}/events` },
    { method: "POST", path: `/streams/${streamId}/events`, body: appendBody() },
    { method: "GET", path: `/streams/${streamId}/state` },
    { method: "GET", path: `/streams/${streamId}/watch` },
    { method: "GET", path: "/no/such/route" },
  ];
  const credentials: Array<[string, Record<string, string>, RegExp]> = [
    ["missing", {}, /Send a token/],
    ["malformed", { authorization: "Token abc" }, /exactly 'Bearer <token>'/],
    ["too short", { authorization: "Bearer short" }, /exactly 'Bearer <token>'/],
    ["wrong", bearer("not-a-configured-token-at-all-000"), /not valid here/],
  ];
  for (const route of routes) {
    for (const [name, headers, detail] of credentials) {
      it(`${route.method} ${route.path.replace(streamId, ":id")}: ${name} token → 401`, async () => {
        const response = await SELF.fetch(`${BASE}${route.path}`, {
          method: route.method,
          headers: { "content-type": "application/json", ...headers },
          ...(route.body === undefined ? {} : { body: route.body }),
        });
        await expectProblem(response, 401, detail);
      });
    }
  }
  it("lets /healthz through without a token", async () => {
    const response = await SELF.fetch(`${BASE}/healthz`);
    expect(response.status).toBe(200);
  });
  it("serves /openapi.json without a token, and whatever token is sent", async () => {
    for (const headers of [{}, { authorization: "Token abc" }, bearer("not-a-configured-token-at-all-000")]) {
      const response = await SELF.fetch(`${BASE}/openapi.json`, { headers });
      expect(response.status).toBe(200);
      const doc = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe("3.1.0");
      expect(Object.keys(doc.paths)).toContain("/streams/{streamId}/events");
    }
  });
  it("wrote nothing for any refused append", async () => {
    const response = await SELF.fetch(`${BASE}/streams/${streamId}`, { headers: bearer(TEST_TOKENS.admin) });
    expect(response.status).toBe(404);
  });
});

describe("scopes", () => {
  it("a read token reads but cannot append", async () => {
    const streamId = await createStream();
    const read = await SELF.fetch(`${BASE}/streams/${streamId}/state`, {
      headers: bearer(TEST_TOKENS.reader),
    });
    expect(read.status).toBe(200);
    const append = await SELF.fetch(`${BASE}/streams/${streamId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(TEST_TOKENS.reader) },
      body: JSON.stringify({ events: [{ event: { type: "context_updated", key: "k", value: 1 } }] }),
    });
    await expectProblem(append, 403, /lacks the append scope/);
    const state = (await (
      await SELF.fetch(`${BASE}/streams/${streamId}/state`, { headers: bearer(TEST_TOKENS.reader) })
    ).json()) as { version: number };
    expect(state.version).toBe(1);
  });

  it("an append token appends but cannot read", async () => {
    const streamId = crypto.randomUUID();
    const append = await SELF.fetch(`${BASE}/streams/${streamId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(TEST_TOKENS.appender) },
      body: appendBody(),
    });
    expect(append.status).toBe(201);
    for (const path of [`/streams/${streamId}`, `/streams/${streamId}/events`, "/streams"]) {
      await expectProblem(
        await SELF.fetch(`${BASE}${path}`, { headers: bearer(TEST_TOKENS.appender) }),
        403,
        /read scope/,
      );
    }
  });
});

describe("tokens limited to streams or stream types", () => {
  it("a one-stream token reaches its stream only, and cannot list", async () => {
    const headers = bearer(TEST_TOKENS.oneStream);
    const own = await SELF.fetch(`${BASE}/streams/${LIMITED_STREAM_ID}/events`, { headers });
    expect(own.status).toBe(200);
    const upper = await SELF.fetch(`${BASE}/streams/${LIMITED_STREAM_ID.toUpperCase()}/events`, { headers });
    expect(upper.status).toBe(200);
    const other = await createStream();
    await expectProblem(
      await SELF.fetch(`${BASE}/streams/${other}/state`, { headers }),
      403,
      /may not access stream/,
    );
    const write = await SELF.fetch(`${BASE}/streams/${other}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: appendBody(),
    });
    await expectProblem(write, 403, /may not access stream/);
    await expectProblem(
      await SELF.fetch(`${BASE}/streams`, { headers }),
      403,
      /limited to particular streams/,
    );
  });

  it("a stream-type token reaches streams of its type only", async () => {
    const headers = bearer(TEST_TOKENS.invoices);
    const invoice = await createStream("invoice");
    const workflow = await createStream("workflow");
    expect((await SELF.fetch(`${BASE}/streams/${invoice}/state`, { headers })).status).toBe(200);
    expect((await SELF.fetch(`${BASE}/streams/${invoice}/events`, { headers })).status).toBe(200);
    for (const path of [
      `/streams/${workflow}`,
      `/streams/${workflow}/events`,
      `/streams/${workflow}/state`,
    ]) {
      await expectProblem(
        await SELF.fetch(`${BASE}${path}`, { headers }),
        403,
        /only streams of type invoice, and this stream is not one of them/,
      );
    }
    const appendWorkflow = await SELF.fetch(`${BASE}/streams/${workflow}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ events: [{ event: { type: "context_updated", key: "k", value: 1 } }] }),
    });
    await expectProblem(appendWorkflow, 403, /type invoice/);
    const createWorkflow = await SELF.fetch(`${BASE}/streams/${crypto.randomUUID()}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: appendBody(),
    });
    await expectProblem(
      createWorkflow,
      403,
      /only streams of type invoice, and this stream is not one of them/,
    );
    const createInvoice = await SELF.fetch(`${BASE}/streams/${crypto.randomUUID()}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: appendBody("workflow_started", "invoice"),
    });
    expect(createInvoice.status).toBe(201);
    await expectProblem(await SELF.fetch(`${BASE}/streams`, { headers }), 403, /add type=/);
    expect((await SELF.fetch(`${BASE}/streams?type=invoice`, { headers })).status).toBe(200);
  });
});

describe("WebSocket watchers", () => {
  const upgrade = (protocols: string) => ({ upgrade: "websocket", "sec-websocket-protocol": protocols });

  it("accepts the token as a bearer.<token> subprotocol and echoes glyph-streams.v1", async () => {
    const streamId = await createStream();
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/watch?from=0`, {
      headers: upgrade(`glyph-streams.v1, bearer.${TEST_TOKENS.reader}`),
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("sec-websocket-protocol")).toBe("glyph-streams.v1");
    const socket = response.webSocket;
    expect(socket).not.toBeNull();
    socket?.accept();
    const first = await new Promise<string>((resolve) => {
      socket?.addEventListener("message", (message) => resolve(String(message.data)), { once: true });
    });
    expect(JSON.parse(first)).toMatchObject({ type: "event", event: { version: 1, stream_id: streamId } });
    socket?.close(1000);
  });

  it("refuses bearer.<token> without glyph-streams.v1 before the upgrade, naming the subprotocol", async () => {
    const streamId = await createStream();
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/watch?from=0`, {
      headers: upgrade(`bearer.${TEST_TOKENS.reader}`),
    });
    expect(response.webSocket).toBeNull();
    expect(response.headers.get("sec-websocket-protocol")).toBeNull();
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const body = (await response.json()) as { type: string; detail: string };
    expect(body.type).toMatch(/subprotocol_required$/);
    expect(body.detail).toMatch(/Offer the WebSocket subprotocol glyph-streams\.v1/);
    expect(body.detail).not.toContain(TEST_TOKENS.reader);
  });

  it("refuses other subprotocols without glyph-streams.v1 also beside an Authorization header", async () => {
    const streamId = await createStream();
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/watch`, {
      headers: { ...upgrade("chat, superchat"), ...bearer(TEST_TOKENS.reader) },
    });
    expect(response.webSocket).toBeNull();
    await expectProblem(response, 400, /subprotocol glyph-streams\.v1/);
  });

  it("answers glyph-streams.v1 offered alone with an Authorization header, and no subprotocol when none is offered", async () => {
    const streamId = await createStream();
    for (const [offered, answered] of [
      ["glyph-streams.v1", "glyph-streams.v1"],
      ["", null],
    ] as const) {
      const response = await SELF.fetch(`${BASE}/streams/${streamId}/watch?from=0`, {
        headers: {
          upgrade: "websocket",
          ...(offered === "" ? {} : { "sec-websocket-protocol": offered }),
          ...bearer(TEST_TOKENS.reader),
        },
      });
      expect(response.status).toBe(101);
      expect(response.headers.get("sec-websocket-protocol")).toBe(answered);
      const socket = response.webSocket;
      if (!socket) throw new Error("no socket");
      socket.accept();
      const first = await new Promise<string>((resolve) => {
        socket.addEventListener("message", (message) => resolve(String(message.data)), { once: true });
      });
      expect(JSON.parse(first)).toMatchObject({ type: "event", event: { version: 1, stream_id: streamId } });
      socket.close(1000);
    }
  });

  it("takes a token from the subprotocol on a WebSocket upgrade only", async () => {
    const streamId = await createStream();
    for (const path of [`/streams/${streamId}`, `/streams/${streamId}/events`]) {
      const response = await SELF.fetch(`${BASE}${path}`, {
        headers: { "sec-websocket-protocol": `glyph-streams.v1, bearer.${TEST_TOKENS.reader}` },
      });
      await expectProblem(response, 401, /Send a token/);
    }
  });

  it("closes a type-limited watcher of an empty stream once the stream turns out to be of another type", async () => {
    const streamId = crypto.randomUUID();
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/watch?from=0`, {
      headers: upgrade(`glyph-streams.v1, bearer.${TEST_TOKENS.invoices}`),
    });
    expect(response.status).toBe(101);
    const socket = response.webSocket;
    if (!socket) throw new Error("no socket");
    socket.accept();
    const messages: unknown[] = [];
    const closed = new Promise<number>((resolve) =>
      socket.addEventListener("close", (event) => resolve(event.code)),
    );
    socket.addEventListener("message", (message) => messages.push(JSON.parse(String(message.data))));
    // Let the watcher catch up on the empty stream and go live first.
    while (!messages.some((m) => (m as { type: string }).type === "caught_up")) await scheduler.wait(20);
    await createStream("workflow", streamId);
    expect(await closed).toBe(1008);
    expect(messages.filter((m) => (m as { type: string }).type === "event")).toEqual([]);
    expect(messages).toContainEqual(expect.objectContaining({ type: "error", code: "forbidden" }));
  });

  it("refuses a wrong or missing token before the upgrade", async () => {
    const streamId = await createStream();
    const wrong = await SELF.fetch(`${BASE}/streams/${streamId}/watch`, {
      headers: upgrade("glyph-streams.v1, bearer.not-a-configured-token-at-all-000"),
    });
    expect(wrong.webSocket).toBeNull();
    await expectProblem(wrong, 401, /not valid here/);
    const missing = await SELF.fetch(`${BASE}/streams/${streamId}/watch`, {
      headers: upgrade("glyph-streams.v1"),
    });
    expect(missing.webSocket).toBeNull();
    await expectProblem(missing, 401, /Send a token/);
    const scoped = await SELF.fetch(`${BASE}/streams/${streamId}/watch`, {
      headers: upgrade(`glyph-streams.v1, bearer.${TEST_TOKENS.appender}`),
    });
    await expectProblem(scoped, 403, /read scope/);
  });
});
