import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { started } from "../support/event-builders";
import {
  type AppendResult,
  appendOk,
  expectJson,
  expectNoStream,
  expectProblem,
  problemCode,
} from "../support/http-client";
import {
  adminAuthorization,
  TEST_TOKENS,
  TEST_WEBHOOK_SOURCES,
  WORKER_TIER_LIMITS,
} from "../support/test-tokens";
import { webhookHeaders } from "../support/webhook-signing";

// Issue 10, row 3: what one credential can use is bounded. Requests per token (and per
// webhook source) by the Rate Limiting binding, watchers per stream and per token, and
// the time a request body may take. This file runs in a Worker of its own (the
// worker-limits project in vitest.config.ts) whose limits are low enough to reach
// (WORKER_TIER_LIMITS) and spent by nothing else.

const BASE = "http://glyph.test";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const newWebhookId = () => `msg_${crypto.randomUUID().replaceAll("-", "")}`;

/** A watcher opened with `token`: its socket, what it was sent, and how it closed. */
async function openWatcher(streamId: string, token: string) {
  const response = await SELF.fetch(`${BASE}/streams/${streamId}/watch?from=0`, {
    headers: { upgrade: "websocket", ...bearer(token) },
  });
  expect(response.status).toBe(101);
  const socket = response.webSocket;
  if (!socket) throw new Error("no socket");
  const messages: Array<{ type: string; code?: string; message?: string }> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })),
  );
  const first = new Promise<void>((resolve) =>
    socket.addEventListener("message", () => resolve(), { once: true }),
  );
  socket.addEventListener("message", (message) => messages.push(JSON.parse(String(message.data))));
  socket.accept();
  await first;
  return { socket, messages, closed };
}

/** Opens watchers until one is admitted (a closed watcher's place frees when its close is handled). */
async function admittedSoon(streamId: string, token: string) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const watcher = await openWatcher(streamId, token);
    if (watcher.messages[0]?.type !== "error") return watcher;
    await watcher.closed;
    await scheduler.wait(50);
  }
  throw new Error("no watcher was admitted after one closed");
}

describe("row 3: bounds on what one credential can use", () => {
  it("a token over its request rate is answered 429 with Retry-After before any actor or database work; other tokens are not", async () => {
    const limit = WORKER_TIER_LIMITS.requestsPer10Seconds;
    const headers = bearer(TEST_TOKENS.burst);
    let limited: Response | undefined;
    // The binding counts in 10-second windows: 2 × limit + 1 requests overflow one of them, wherever they start.
    for (let sent = 0; limited === undefined && sent <= 2 * limit; sent += 25) {
      const answers = await Promise.all(
        Array.from({ length: 25 }, () => SELF.fetch(`${BASE}/no/such/route`, { headers })),
      );
      expect(answers.filter((answer) => answer.status !== 404 && answer.status !== 429)).toEqual([]);
      limited = answers.find((answer) => answer.status === 429);
    }
    if (limited === undefined) throw new Error("no request was refused for the rate");
    const problem = await expectProblem(limited, 429);
    expect(problemCode(problem)).toBe("rate_limited");
    expect(limited.headers.get("retry-after")).toBe("10");
    expect(problem.detail).toMatch(/Token burst sent more requests than its limit allows in 10 seconds/);

    // The probe, a read of a random stream, is refused before its actor does anything.
    const streamId = crypto.randomUUID();
    await expectProblem(await SELF.fetch(`${BASE}/streams/${streamId}`, { headers }), 429);
    await expectProblem(await SELF.fetch(`${BASE}/streams?limit=1`, { headers }), 429);
    const actor = env.STREAM_ACTOR.get(env.STREAM_ACTOR.idFromName(streamId));
    expect(await actor.stats()).toMatchObject({ loads: 0, statements: 0 });
    // Counted per token: another one is served.
    expect(
      (await SELF.fetch(`${BASE}/streams/${streamId}`, { headers: bearer(TEST_TOKENS.reader) })).status,
    ).toBe(404);
  });

  it("a stream takes at most WATCHERS_PER_STREAM watchers; the next is closed with 4429 saying why", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    const open = [];
    for (let index = 0; index < WORKER_TIER_LIMITS.watchersPerStream; index++) {
      const watcher = await openWatcher(streamId, TEST_TOKENS.streamWatcher);
      expect(watcher.messages[0]).toMatchObject({ type: "event" });
      open.push(watcher);
    }
    const refused = await openWatcher(streamId, TEST_TOKENS.streamWatcher);
    expect(await refused.closed).toEqual({
      code: 4429,
      reason: "too many watchers; close one before reconnecting",
    });
    expect(refused.messages).toEqual([
      { type: "error", code: "too_many_watchers", message: expect.stringMatching(/WATCHERS_PER_STREAM/) },
    ]);
    open[0]?.socket.close(1000);
    const again = await admittedSoon(streamId, TEST_TOKENS.streamWatcher);
    expect(again.messages[0]).toMatchObject({ type: "event" });
    for (const watcher of [...open, again]) watcher.socket.close(1000);
  });

  it("a token has at most WATCHERS_PER_TOKEN watchers over all streams; the next is closed with 4429 saying why", async () => {
    const streams = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    for (const streamId of streams) await appendOk(streamId, { events: [{ event: started() }] });
    const open = [];
    for (let index = 0; index < WORKER_TIER_LIMITS.watchersPerToken; index++) {
      const watcher = await openWatcher(streams[index % 3] ?? "", TEST_TOKENS.tokenWatcher);
      expect(watcher.messages[0]).toMatchObject({ type: "event" });
      open.push(watcher);
    }
    const refused = await openWatcher(streams[3] ?? "", TEST_TOKENS.tokenWatcher);
    expect((await refused.closed).code).toBe(4429);
    expect(refused.messages[0]?.message).toMatch(
      /Token token-watcher has 6 watchers open, its most \(WATCHERS_PER_TOKEN\)/,
    );
    // Another token is not held back by this one's watchers.
    const other = await openWatcher(streams[3] ?? "", TEST_TOKENS.reader);
    expect(other.messages[0]).toMatchObject({ type: "event" });
    other.socket.close(1000);
    open[0]?.socket.close(1000);
    const again = await admittedSoon(streams[3] ?? "", TEST_TOKENS.tokenWatcher);
    expect(again.messages[0]).toMatchObject({ type: "event" });
    for (const watcher of [...open, again]) watcher.socket.close(1000);
  });

  it("a lease lost with its socket (an actor gone with watchers open) is dropped once the cap is reached", async () => {
    const streamId = crypto.randomUUID();
    const quota = env.WATCHER_QUOTA.get(env.WATCHER_QUOTA.idFromName(`lost-leases-${crypto.randomUUID()}`));
    await runInDurableObject(quota, async (_instance, state) => {
      const long = Date.now() - 60_000;
      await state.storage.put("lease:lost-1", { streamId, at: long });
      await state.storage.put("lease:lost-2", { streamId, at: long });
      // Too young to be judged: its socket may be on its way.
      await state.storage.put("lease:young", { streamId, at: Date.now() });
    });
    expect(await quota.acquire("new", streamId, 3)).toEqual({ ok: true });
    expect(await quota.held()).toBe(2);
    expect(await quota.acquire("newer", streamId, 2)).toEqual({ ok: false, held: 2 });
  });

  /** A body that sends `first` and then nothing, never ending. */
  const stalledBody = (first: string) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(first));
      },
    });

  it("a body that stalls is answered 408 after BODY_TIMEOUT_MS, and nothing is written", async () => {
    const streamId = crypto.randomUUID();
    const startedAt = Date.now();
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...adminAuthorization },
      body: stalledBody('{"events":[{"event":'),
      signal: AbortSignal.timeout(15_000),
    });
    const took = Date.now() - startedAt;
    const problem = await expectProblem(response, 408);
    expect(problemCode(problem)).toBe("body_timeout");
    expect(took).toBeGreaterThanOrEqual(WORKER_TIER_LIMITS.bodyTimeoutMs - 50);
    expect(took).toBeLessThan(WORKER_TIER_LIMITS.bodyTimeoutMs + 5_000);
    await expectNoStream(streamId);

    const text = JSON.stringify({ stream_id: streamId, events: [{ event: started() }] });
    const webhook = await SELF.fetch(`${BASE}/webhooks/acme`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(await webhookHeaders(TEST_WEBHOOK_SOURCES.acme[0], newWebhookId(), text)),
      },
      body: stalledBody(text.slice(0, 10)),
      signal: AbortSignal.timeout(15_000),
    });
    expect(problemCode(await expectProblem(webhook, 408))).toBe("body_timeout");
    await expectNoStream(streamId);
  });

  it("a body that arrives in pieces within BODY_TIMEOUT_MS is taken", async () => {
    const streamId = crypto.randomUUID();
    const pieces = JSON.stringify({ events: [{ event: started() }] }).match(/.{1,12}/g) ?? [];
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (const piece of pieces) {
          controller.enqueue(new TextEncoder().encode(piece));
          await scheduler.wait(20);
        }
        controller.close();
      },
    });
    const response = await SELF.fetch(`${BASE}/streams/${streamId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", ...adminAuthorization },
      body,
    });
    expect((await expectJson<AppendResult>(response, 201)).versions).toEqual([1]);
  });
});
