import { afterAll, describe, expect, it } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import {
  compareCheckpoints,
  decodeCheckpoint,
  encodeCheckpoint,
  FEED_START,
  type FeedCheckpoint,
} from "../../src/feed/checkpoint";
import type { FeedEvent } from "../../src/feed/feed-event";
import { feedHead, readFeed } from "../../src/feed/feed-statements";
import { openTestPool } from "../support/database";
import { contextUpdated, started, wrap } from "../support/event-builders";

// The global feed against a real PostgreSQL: the order rule (only transactions older
// than every running one, in (transaction_id, global_position) order) keeps a reader
// from passing an event whose transaction took its position first but commits last.
// Other test files write to the same database at the same time, so each test reads only
// its own stream type.

const WRITERS = 16;
const STREAMS = 64;
const pool = openTestPool(WRITERS + 4);
const store = new PgEventStore(pool);
afterAll(() => pool.end());

const freshType = () => `feed_${crypto.randomUUID().slice(0, 8)}`;

/** Every event of `streamType` after `after`, paging `limit` at a time until a page comes back short. */
async function readAll(streamType: string, after: FeedCheckpoint = FEED_START, limit = 100) {
  const events: FeedEvent[] = [];
  let cursor = after;
  for (;;) {
    const page = await readFeed(pool, { after: cursor, limit, streamTypes: [streamType] });
    events.push(...page);
    const last = page.at(-1);
    if (last !== undefined) cursor = decodeCheckpoint(last.checkpoint) ?? cursor;
    if (page.length < limit) return { events, cursor };
  }
}

/**
 * A transaction left open after writing one event to a new stream of `streamType`, as
 * a writer that took its position and has not committed yet: the statement the store
 * uses, but inside BEGIN.
 */
async function openWriter(streamType: string) {
  const client = await pool.connect();
  const streamId = crypto.randomUUID();
  const eventId = crypto.randomUUID();
  await client.query("BEGIN");
  await client.query(
    "INSERT INTO workflow_streams (stream_id, stream_type, version, status) VALUES ($1, $2, 1, 'running')",
    [streamId, streamType],
  );
  await client.query(
    `INSERT INTO workflow_events (event_id, stream_id, stream_type, version, event_type, event)
     VALUES ($1, $2, $3, 1, 'workflow_started', $4::jsonb)`,
    [eventId, streamId, streamType, JSON.stringify(started())],
  );
  return {
    eventId,
    commit: async () => {
      await client.query("COMMIT");
      client.release();
    },
  };
}

describe("checkpoints", () => {
  it("are opaque strings that decode to the same pair, with one spelling each", () => {
    const checkpoint = { transactionId: 2n ** 64n - 1n, globalPosition: Number.MAX_SAFE_INTEGER };
    const text = encodeCheckpoint(checkpoint);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCheckpoint(text)).toEqual(checkpoint);
    expect(decodeCheckpoint(encodeCheckpoint(FEED_START))).toEqual(FEED_START);
    for (const bad of ["", "x", `${text}=`, btoa("01.2"), btoa("1.2.3"), btoa(`${2n ** 64n}.1`), "a b"]) {
      expect(decodeCheckpoint(bad)).toBeUndefined();
    }
    expect(
      compareCheckpoints({ transactionId: 5n, globalPosition: 9 }, { transactionId: 6n, globalPosition: 1 }),
    ).toBeLessThan(0);
  });
});

describe("the feed's order", () => {
  it("does not pass a transaction that took its position first and commits last; its event then arrives in its place", async () => {
    const streamType = freshType();
    const first = await store.append({
      streamId: crypto.randomUUID(),
      streamType,
      expectedVersion: "no_stream",
      events: wrap(started()),
    });
    const before = await readAll(streamType);
    expect(before.events.map((event) => event.event_id)).toEqual(first.eventIds);

    const open = await openWriter(streamType);
    const later = await store.append({
      streamId: crypto.randomUUID(),
      streamType,
      expectedVersion: "no_stream",
      events: wrap(started(), contextUpdated("k", 1)),
    });
    // Committed and acknowledged, but behind an older transaction still open: not in the feed yet.
    expect((await readAll(streamType, before.cursor)).events).toEqual([]);

    await open.commit();
    const after = await readAll(streamType, before.cursor);
    expect(after.events.map((event) => event.event_id)).toEqual([open.eventId, ...later.eventIds]);
    // Each event's position is its own: the open one took the smaller global position.
    const positions = after.events.map((event) => event.global_position ?? 0);
    expect(positions[0]).toBeLessThan(positions[1] ?? 0);
  });

  it("is held by any open transaction, even one that never touches the events", async () => {
    const streamType = freshType();
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      // An unrelated transaction that has an id (it wrote something anywhere, or asked for one).
      await client.query("SELECT pg_current_xact_id()");
      const written = await store.append({
        streamId: crypto.randomUUID(),
        streamType,
        expectedVersion: "no_stream",
        events: wrap(started()),
      });
      expect((await readAll(streamType)).events).toEqual([]);
      await client.query("ROLLBACK");
      expect((await readAll(streamType)).events.map((event) => event.event_id)).toEqual(written.eventIds);
    } finally {
      client.release();
    }
  });

  it("filters by stream type and event type, stops at `through`, and knows its head", async () => {
    const streamType = freshType();
    const streamId = crypto.randomUUID();
    const written = await store.append({
      streamId,
      streamType,
      expectedVersion: "no_stream",
      events: wrap(started(), contextUpdated("a", 1), contextUpdated("b", 2)),
    });
    const all = (await readAll(streamType)).events;
    expect(all.map((event) => event.version)).toEqual([1, 2, 3]);
    expect(all[0]).toMatchObject({
      event_id: written.eventIds[0],
      stream_id: streamId,
      stream_type: streamType,
    });

    const updates = await readFeed(pool, {
      after: FEED_START,
      limit: 10,
      streamTypes: [streamType],
      eventTypes: ["context_updated"],
    });
    expect(updates.map((event) => event.version)).toEqual([2, 3]);

    const through = decodeCheckpoint(all[1]?.checkpoint ?? "");
    const bounded = await readFeed(pool, {
      after: FEED_START,
      limit: 10,
      streamTypes: [streamType],
      through,
    });
    expect(bounded.map((event) => event.version)).toEqual([1, 2]);

    const head = await feedHead(pool);
    const last = decodeCheckpoint(all[2]?.checkpoint ?? "");
    expect(last).toBeDefined();
    expect(compareCheckpoints(head, last as FeedCheckpoint)).toBeGreaterThanOrEqual(0);
  });
});

it(`gives a reader paging the feed while ${WRITERS} writers append to ${STREAMS} streams every acknowledged event exactly once, each stream in version order`, async () => {
  const streamType = freshType();
  const streams = Array.from({ length: STREAMS }, () => crypto.randomUUID());
  const acknowledged = new Set<string>();
  let writing = true;

  const writer = async (index: number) => {
    for (let round = 0; round < 20; round++) {
      const streamId = streams[(index * 7 + round * 13) % STREAMS] as string;
      const count = 1 + ((index + round) % 3);
      const result = await store.append({
        streamId,
        streamType,
        expectedVersion: "any",
        events: Array.from({ length: count }, (_, i) => ({
          event: contextUpdated(`w${index}`, round * 3 + i),
        })),
      });
      for (const id of result.eventIds) acknowledged.add(id);
    }
  };

  // Every stream starts its workflow first, so any later context update is valid.
  await Promise.all(
    streams.map((streamId) =>
      store
        .append({ streamId, streamType, expectedVersion: "no_stream", events: wrap(started()) })
        .then((result) => {
          for (const id of result.eventIds) acknowledged.add(id);
        }),
    ),
  );

  const seen: FeedEvent[] = [];
  const reader = (async () => {
    let cursor = FEED_START;
    // Page while the writers run, then until everything acknowledged has arrived (other
    // test files' transactions may hold the horizon for a moment), then once more.
    const deadline = () => Date.now() > writersDoneAt + 20_000;
    let writersDoneAt = Number.POSITIVE_INFINITY;
    for (let extra = 0; extra < 2; ) {
      const page = await readFeed(pool, { after: cursor, limit: 37, streamTypes: [streamType] });
      seen.push(...page);
      const last = page.at(-1);
      if (last !== undefined) cursor = decodeCheckpoint(last.checkpoint) ?? cursor;
      if (!writing && writersDoneAt === Number.POSITIVE_INFINITY) writersDoneAt = Date.now();
      if (!writing && (seen.length >= acknowledged.size || deadline())) extra++;
      if (page.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  await Promise.all(Array.from({ length: WRITERS }, (_, index) => writer(index)));
  writing = false;
  await reader;

  const ids = seen.map((event) => event.event_id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(new Set(ids)).toEqual(acknowledged);
  // Feed order is (transaction, position); per stream that is version order.
  const versions = new Map<string, number[]>();
  for (const event of seen)
    versions.set(event.stream_id, [...(versions.get(event.stream_id) ?? []), event.version]);
  for (const list of versions.values()) expect(list).toEqual(list.map((_, index) => index + 1));
  const checkpoints = seen.map((event) => decodeCheckpoint(event.checkpoint) as FeedCheckpoint);
  for (let i = 1; i < checkpoints.length; i++) {
    expect(
      compareCheckpoints(checkpoints[i - 1] as FeedCheckpoint, checkpoints[i] as FeedCheckpoint),
    ).toBeLessThan(0);
  }
});
