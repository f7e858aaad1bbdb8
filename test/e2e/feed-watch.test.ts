import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { FeedEvent } from "../../src/feed/feed-event";
import { openTestPool } from "../support/database";
import { type FeedWatcher, watchFeed } from "../support/feed-watch-client";
import { adminAuthorization, TEST_TOKENS } from "../support/test-tokens";
import { type RunningWorker, startWorker } from "./worker-harness";

// The global feed over real HTTP and real WebSockets (the ws package) against the Worker
// served by workerd: GET /events pages and GET /watch follows while writers append,
// a reconnect resumes from a checkpoint, and a commit no stream actor made still arrives.

let worker: RunningWorker;
const pool = openTestPool(2);
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"), { FEED_POLL_INTERVAL_MS: "500" });
});
afterAll(async () => {
  await worker.stop();
  await pool.end();
});

const WRITERS = 16;
const STREAMS = 64;
const freshType = () => `feed_${crypto.randomUUID().slice(0, 8)}`;
const started = () => ({ type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" });
const context = (key: string, value: number) => ({ type: "context_updated", key, value });

async function append(streamId: string, streamType: string, events: unknown[]): Promise<string[]> {
  const response = await fetch(new URL(`/streams/${streamId}/events`, worker.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify({ stream_type: streamType, events: events.map((event) => ({ event })) }),
  });
  const body = (await response.json()) as { event_ids: string[] };
  expect(response.status, JSON.stringify(body)).toBe(201);
  return body.event_ids;
}

async function readPage(query: string): Promise<{ events: FeedEvent[]; next: string }> {
  const response = await fetch(new URL(`/events?${query}`, worker.url), { headers: adminAuthorization });
  expect(response.status).toBe(200);
  return (await response.json()) as { events: FeedEvent[]; next: string };
}

/** Every event's id once, and each stream's versions 1, 2, 3, … in arrival order. */
function expectExactlyOnceInOrder(events: readonly FeedEvent[], acknowledged: ReadonlySet<string>) {
  const ids = events.map((event) => event.event_id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(new Set(ids)).toEqual(acknowledged);
  const versions = new Map<string, number[]>();
  for (const event of events)
    versions.set(event.stream_id, [...(versions.get(event.stream_id) ?? []), event.version]);
  for (const list of versions.values()) expect(list).toEqual(list.map((_, index) => index + 1));
}

it(`gives a /watch client and a GET /events reader every event of ${WRITERS} writers over ${STREAMS} streams exactly once, each stream in order`, async () => {
  const streamType = freshType();
  const streams = Array.from({ length: STREAMS }, () => crypto.randomUUID());
  const acknowledged = new Set<string>();
  const watcher = await watchFeed(worker.url, { stream_type: streamType });
  try {
    let writing = true;
    const read: FeedEvent[] = [];
    const reader = (async () => {
      let next: string | undefined;
      for (;;) {
        const page = await readPage(`stream_type=${streamType}&limit=50${next ? `&after=${next}` : ""}`);
        read.push(...page.events);
        next = page.next;
        if (!writing && read.length >= acknowledged.size) return;
        if (page.events.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await Promise.all(
      streams.map(async (streamId) => {
        for (const id of await append(streamId, streamType, [started()])) acknowledged.add(id);
      }),
    );
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, writer) => {
        for (let round = 0; round < 12; round++) {
          const streamId = streams[(writer * 5 + round * 11) % STREAMS] as string;
          const size = 1 + ((writer + round) % 3);
          const events = Array.from({ length: size }, (_, i) => context(`w${writer}`, round * 3 + i));
          for (const id of await append(streamId, streamType, events)) acknowledged.add(id);
        }
      }),
    );
    writing = false;
    await reader;
    await watcher.waitUntil((events) => events.length >= acknowledged.size);
    expectExactlyOnceInOrder(read, acknowledged);
    expectExactlyOnceInOrder(watcher.events, acknowledged);
    // The same order for both: the feed's.
    expect(watcher.events.map((event) => event.checkpoint)).toEqual(read.map((event) => event.checkpoint));
    expect(watcher.messages.filter((message) => message.type === "caught_up")).toHaveLength(1);
  } finally {
    await watcher.close();
  }
});

it("loses and repeats nothing when a watcher joins during appends and reconnects from its last checkpoint", async () => {
  const streamType = freshType();
  const streamId = crypto.randomUUID();
  const ids = await append(streamId, streamType, [
    started(),
    ...Array.from({ length: 60 }, (_, i) => context("k", i)),
  ]);
  const appending = (async () => {
    for (let batch = 0; batch < 30; batch++) {
      ids.push(...(await append(streamId, streamType, [context(`b${batch}`, 1), context(`b${batch}`, 2)])));
    }
  })();
  const first = await watchFeed(worker.url, { stream_type: streamType });
  await first.waitUntil((events) => events.length >= 80);
  await first.close();
  const last = first.events.at(-1)?.checkpoint as string;
  const second = await watchFeed(worker.url, { stream_type: streamType, after: last });
  try {
    await appending;
    await second.waitUntil((events) => first.events.length + events.length >= ids.length);
    const all = [...first.events, ...second.events];
    expect(all.map((event) => event.event_id)).toEqual(ids);
    expect(all.map((event) => event.version)).toEqual(ids.map((_, index) => index + 1));
  } finally {
    await second.close();
  }
});

it("delivers a commit that no stream actor made (the poll is the backstop), and one held behind an open transaction once it ends", async () => {
  const streamType = freshType();
  const watcher = await watchFeed(worker.url, { stream_type: streamType });
  try {
    await watcher.waitUntil(() => watcher.messages.some((message) => message.type === "caught_up"));
    // A transaction that writes an event itself, left open while a stream actor commits after it.
    const client = await pool.connect();
    const foreignStream = crypto.randomUUID();
    const foreignEvent = crypto.randomUUID();
    try {
      await client.query("BEGIN");
      await client.query(
        "INSERT INTO workflow_streams (stream_id, stream_type, version, status) VALUES ($1, $2, 1, 'running')",
        [foreignStream, streamType],
      );
      await client.query(
        `INSERT INTO workflow_events (event_id, stream_id, stream_type, version, event_type, event)
         VALUES ($1, $2, $3, 1, 'workflow_started', $4::jsonb)`,
        [
          foreignEvent,
          foreignStream,
          streamType,
          JSON.stringify({ ...started(), started_at: "2026-03-01T10:00:00Z" }),
        ],
      );
      const later = await append(crypto.randomUUID(), streamType, [started()]);
      // The stream actor told the feed actor; the feed holds the event behind the open transaction.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(watcher.events).toEqual([]);
      await client.query("COMMIT");
      // Nobody tells the feed actor about this commit: its poll finds both, in feed order.
      await watcher.waitUntil((events) => events.length >= 2);
      expect(watcher.events.map((event) => event.event_id)).toEqual([foreignEvent, ...later]);
    } finally {
      client.release();
    }
  } finally {
    await watcher.close();
  }
});

describe("GET /watch, like the per-stream watch", () => {
  let watcher: FeedWatcher | undefined;
  afterAll(() => watcher?.close());

  it("takes the token as a subprotocol beside glyph-streams.v1, answers pings, and sends caught_up with a checkpoint", async () => {
    watcher = await watchFeed(
      worker.url,
      { stream_type: freshType() },
      { protocols: ["glyph-streams.v1", `bearer.${TEST_TOKENS.reader}`] },
    );
    expect(watcher.socket.protocol).toBe("glyph-streams.v1");
    watcher.socket.send('{"type":"ping"}');
    await watcher.waitUntil(() => watcher?.messages.length === 2);
    expect(watcher.messages).toEqual(
      expect.arrayContaining([{ type: "caught_up", checkpoint: expect.any(String) }, { type: "pong" }]),
    );
  });

  it("gives a token limited to stream types only those types", async () => {
    const mine = freshType();
    const limited = await watchFeed(
      worker.url,
      {},
      { headers: { authorization: `Bearer ${TEST_TOKENS.invoices}` } },
    );
    try {
      await limited.waitUntil(() => limited.messages.some((message) => message.type === "caught_up"));
      const before = limited.events.length;
      await append(crypto.randomUUID(), mine, [started()]);
      const invoice = await append(crypto.randomUUID(), "invoice", [started()]);
      await limited.waitUntil((events) => events.some((event) => event.event_id === invoice[0]));
      for (const event of limited.events.slice(before)) expect(event.stream_type).toBe("invoice");
    } finally {
      await limited.close();
    }
  });

  it("refuses bad input before the upgrade", async () => {
    // A raw upgrade request (fetch may not send Connection: Upgrade): the status it is answered with.
    const refused = (path: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request({
          host: worker.url.hostname,
          port: worker.url.port,
          path,
          headers: {
            ...headers,
            connection: "Upgrade",
            upgrade: "websocket",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          },
        });
        req.on("upgrade", (response, socket) => {
          socket.destroy();
          resolve(response.statusCode ?? 0);
        });
        req.on("response", (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
    expect(await refused("/watch?after=nope", adminAuthorization)).toBe(400);
    expect(
      await refused("/watch?stream_type=workflow", { authorization: `Bearer ${TEST_TOKENS.invoices}` }),
    ).toBe(403);
    expect(await refused("/watch", { authorization: `Bearer ${TEST_TOKENS.oneStream}` })).toBe(403);
    expect(await refused("/watch", {})).toBe(401);
    const plain = await fetch(new URL("/watch", worker.url), { headers: adminAuthorization });
    await plain.body?.cancel();
    expect(plain.status).toBe(426);
  });
});
