import { request } from "node:http";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { adminAuthorization, TEST_TOKENS } from "../support/test-tokens";
import { type Watcher, watch } from "../support/watch-client";
import { type RunningWorker, startWorker } from "./worker-harness";

// Real WebSocket clients (the ws package) against the Worker served by workerd.

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"));
});
afterAll(() => worker.stop());

const started = () => ({ type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" });
const context = (key: string, value: number) => ({ type: "context_updated", key, value });

async function append(streamId: string, events: unknown[], expected?: number): Promise<Response> {
  return fetch(new URL(`/streams/${streamId}/events`, worker.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify({
      events: events.map((event) => ({ event })),
      ...(expected === undefined ? {} : { expected_version: expected }),
    }),
  });
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

it("delivers 1..500 exactly once, in order, to a watcher that joined before 8 concurrent writers", async () => {
  const streamId = crypto.randomUUID();
  const watcher = await watch(worker.url, streamId, 0);
  try {
    expect((await append(streamId, [started()])).status).toBe(201);
    const perWriter = 499 / 8;
    await Promise.all(
      range(0, 7).map(async (writer) => {
        const count = writer < 3 ? Math.ceil(perWriter) : Math.floor(perWriter);
        let sent = 0;
        while (sent < count) {
          const size = Math.min(1 + ((writer + sent) % 3), count - sent);
          const events = range(1, size).map((i) => context(`w${writer}`, sent + i));
          const response = await append(streamId, events);
          expect(response.status).toBe(201);
          sent += size;
        }
      }),
    );
    await watcher.waitFor(500);
    expect(watcher.versions).toEqual(range(1, 500));
    expect(watcher.messages.filter((m) => m.type === "caught_up")).toHaveLength(1);
  } finally {
    await watcher.close();
  }
});

it("loses and repeats nothing when a watcher joins during appends and later reconnects from its last version", async () => {
  const streamId = crypto.randomUUID();
  expect((await append(streamId, [started(), ...range(2, 120).map((i) => context("k", i))])).status).toBe(
    201,
  );
  const appending = (async () => {
    for (let batch = 0; batch < 40; batch++) {
      expect(
        (
          await append(
            streamId,
            range(1, 5).map((i) => context(`b${batch}`, i)),
          )
        ).status,
      ).toBe(201);
    }
  })();
  // Joins while history (120 events) is read and commits keep landing.
  const first = await watch(worker.url, streamId, 0);
  await first.waitFor(150);
  await first.close();
  const seen = [...first.versions];
  const last = seen.at(-1) ?? 0;
  const second = await watch(worker.url, streamId, last);
  try {
    await appending;
    await second.waitFor(320);
    const all = [...seen, ...second.versions];
    expect(all).toEqual(range(1, 320));
  } finally {
    await second.close();
  }
});

it("waits on a stream with no events yet, and delivers a burst to 200 watchers", async () => {
  const streamId = crypto.randomUUID();
  const watchers: Watcher[] = [];
  for (let i = 0; i < 200; i += 20) {
    watchers.push(...(await Promise.all(range(1, 20).map(() => watch(worker.url, streamId, 0)))));
  }
  try {
    expect(
      (await append(streamId, [started(), ...range(2, 30).map((i) => context("burst", i))])).status,
    ).toBe(201);
    await Promise.all(range(31, 60).map((i) => append(streamId, [context(`c${i}`, i)])));
    await Promise.all(watchers.map((w) => w.waitFor(60)));
    for (const w of watchers) expect(w.versions).toEqual(range(1, 60));
  } finally {
    await Promise.all(watchers.map((w) => w.close()));
  }
});

it("answers a ping with a pong, refuses other messages politely, and echoes the subprotocol", async () => {
  const streamId = crypto.randomUUID();
  const watcher = await watch(worker.url, streamId, 0, {
    protocols: ["glyph-streams.v1", `bearer.${TEST_TOKENS.reader}`],
  });
  try {
    expect(watcher.socket.protocol).toBe("glyph-streams.v1");
    watcher.socket.send('{"type":"ping"}');
    watcher.socket.send('{"type":"append"}');
    // Wait (bounded) for the three answers, then a little longer to catch any extra one.
    for (let waited = 0; watcher.messages.length < 3 && waited < 10_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The pong comes from the runtime at once, so it may overtake caught_up.
    expect(watcher.messages).toHaveLength(3);
    expect(watcher.messages).toEqual(
      expect.arrayContaining([
        { type: "caught_up", version: 0 },
        { type: "pong" },
        { type: "error", code: "unsupported_message", message: expect.stringContaining("ping") },
      ]),
    );
  } finally {
    await watcher.close();
  }
});

it("keeps serving reads while watchers leave in the middle of their catch-up", async () => {
  const streamId = crypto.randomUUID();
  expect((await append(streamId, [started(), ...range(2, 31).map((i) => context(`k${i}`, i))])).status).toBe(
    201,
  );
  // Raw upgrades that drop the socket as soon as it opens: the actor's next send on it fails.
  const upgradeAndDrop = () =>
    new Promise<void>((resolve) => {
      const req = request({
        host: worker.url.hostname,
        port: worker.url.port,
        path: `/streams/${streamId}/watch?from=0`,
        headers: {
          ...adminAuthorization,
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64"),
        },
      });
      req.on("upgrade", (_response, socket) => {
        socket.destroy();
        resolve();
      });
      req.on("response", (response) => {
        response.resume();
        resolve();
      });
      req.on("error", () => resolve());
      req.end();
    });
  const statuses: number[] = [];
  const reader = async () => {
    for (let i = 0; i < 40; i++) {
      const response = await fetch(new URL(`/streams/${streamId}/state?at=${1 + (i % 30)}`, worker.url), {
        headers: adminAuthorization,
      });
      await response.arrayBuffer();
      statuses.push(response.status);
    }
  };
  const leaver = async () => {
    for (let i = 0; i < 30; i++) await upgradeAndDrop();
  };
  await Promise.all([reader(), reader(), reader(), leaver()]);
  expect(statuses.filter((status) => status !== 200)).toEqual([]);
  expect(statuses).toHaveLength(120);
});
