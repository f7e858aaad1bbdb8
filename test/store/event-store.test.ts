import { afterAll, describe, expect, it } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import { StateRebuilder } from "../../src/events/replay";
import { SNAPSHOT_INTERVAL } from "../../src/events/store";
import {
  ConcurrencyConflict,
  IdempotencyConflict,
  InvalidAppend,
  StreamTypeMismatch,
} from "../../src/events/store-errors";
import { applyEvents } from "../../src/state/apply-event";
import { InvalidEventSequence } from "../../src/state/invalid-event-sequence";
import { emptyWorkflowState, STATE_SCHEMA_VERSION } from "../../src/state/workflow-state";
import { openTestPool } from "../support/database";
import {
  contextUpdated,
  contextUpdates,
  started,
  stepActivated,
  stepCompleted,
  workflowCompleted,
  wrap,
} from "../support/event-builders";

const pool = openTestPool();
const store = new PgEventStore(pool);
afterAll(() => pool.end());

const newStream = () => crypto.randomUUID();

async function countRows(table: "workflow_events" | "workflow_snapshots", streamId: string): Promise<number> {
  const result = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE stream_id = $1`, [streamId]);
  return (result.rows[0] as { n: number }).n;
}

async function snapshotVersions(streamId: string): Promise<number[]> {
  const result = await pool.query(
    "SELECT version::int AS version FROM workflow_snapshots WHERE stream_id = $1 ORDER BY version",
    [streamId],
  );
  return result.rows.map((row) => (row as { version: number }).version);
}

describe("append", () => {
  it("creates a stream with no_stream and numbers events from 1", async () => {
    const streamId = newStream();
    const result = await store.append({
      streamId,
      expectedVersion: "no_stream",
      streamType: "order",
      events: wrap(started(), contextUpdated("a", 1), contextUpdated("b", [1, { c: null }])),
    });
    expect(result).toMatchObject({
      streamId,
      streamType: "order",
      version: 3,
      versions: [1, 2, 3],
      idempotent: false,
    });
    expect(result.eventIds).toHaveLength(3);
    const head = await store.getStreamHead(streamId);
    expect(head).toMatchObject({ stream_id: streamId, stream_type: "order", version: 3 });
    const events = await store.loadEvents(streamId);
    expect(events.map((e) => [e.version, e.event_id, e.stream_type])).toEqual([
      [1, result.eventIds[0], "order"],
      [2, result.eventIds[1], "order"],
      [3, result.eventIds[2], "order"],
    ]);
    expect(events[2]?.event).toEqual({
      type: "context_updated",
      key: "b",
      value: [1, { c: null }],
      updated_at: "2026-03-01T10:00:00Z",
    });
    expect(events[0]?.metadata).toEqual({});
  });

  it("defaults the stream type to workflow and keeps caller metadata", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "any",
      events: [{ event: started(), metadata: { trace: "abc", nested: { n: 1 } } }],
    });
    const [event] = await store.loadEvents(streamId);
    expect(event?.stream_type).toBe("workflow");
    expect(event?.metadata).toEqual({ trace: "abc", nested: { n: 1 } });
  });

  it("checks every kind of expected version", async () => {
    const streamId = newStream();
    await expect(
      store.append({ streamId, expectedVersion: "stream_exists", events: wrap(started()) }),
    ).rejects.toMatchObject({ name: "ConcurrencyConflict", expected: "stream_exists", actual: 0 });
    await expect(
      store.append({ streamId, expectedVersion: 3, events: wrap(started()) }),
    ).rejects.toMatchObject({
      name: "ConcurrencyConflict",
      expected: 3,
      actual: 0,
    });
    await store.append({ streamId, expectedVersion: 0, events: wrap(started()) });
    await expect(
      store.append({ streamId, expectedVersion: "no_stream", events: wrap(contextUpdated("x", 1)) }),
    ).rejects.toMatchObject({ name: "ConcurrencyConflict", expected: "no_stream", actual: 1 });
    await expect(
      store.append({ streamId, expectedVersion: 2, events: wrap(contextUpdated("x", 1)) }),
    ).rejects.toMatchObject({ expected: 2, actual: 1 });
    const exists = await store.append({
      streamId,
      expectedVersion: "stream_exists",
      events: wrap(contextUpdated("x", 1)),
    });
    expect(exists.version).toBe(2);
    const exact = await store.append({ streamId, expectedVersion: 2, events: wrap(contextUpdated("y", 2)) });
    expect(exact.versions).toEqual([3]);
    const any = await store.append({
      streamId,
      expectedVersion: "any",
      events: wrap(contextUpdated("z", 3)),
    });
    expect(any.versions).toEqual([4]);
    expect(await countRows("workflow_events", streamId)).toBe(4);
  });

  it("tells the conflict's expected and actual versions in its message", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: wrap(started(), contextUpdated("a", 1)),
    });
    const error = await store
      .append({ streamId, expectedVersion: 1, events: wrap(contextUpdated("b", 1)) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyConflict);
    expect((error as Error).message).toContain("is at version 2 but the append expected version 1");
  });

  it("is idempotent for an append repeated with the same event ids", async () => {
    const streamId = newStream();
    const events = [
      { event: started(), event_id: crypto.randomUUID() },
      { event: contextUpdated("a", 1), event_id: crypto.randomUUID().toUpperCase() },
    ];
    const first = await store.append({ streamId, expectedVersion: "no_stream", events });
    expect(first.eventIds[1]).toBe(events[1]?.event_id.toLowerCase());
    await store.append({ streamId, expectedVersion: 2, events: wrap(contextUpdated("b", 2)) });
    // The retry's expected version is stale now; idempotency is answered before the version check.
    const again = await store.append({ streamId, expectedVersion: "no_stream", events });
    expect(again).toMatchObject({ idempotent: true, versions: [1, 2], version: 2, eventIds: first.eventIds });
    expect(await countRows("workflow_events", streamId)).toBe(3);
  });

  it("refuses event ids reused in another way", async () => {
    const streamId = newStream();
    const a = crypto.randomUUID();
    const b = crypto.randomUUID();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: [
        { event: started(), event_id: a },
        { event: contextUpdated("a", 1), event_id: b },
      ],
    });
    // Same ids in another order, only some of them, or in another stream.
    await expect(
      store.append({
        streamId,
        expectedVersion: "any",
        events: [
          { event: contextUpdated("a", 1), event_id: b },
          { event: started(), event_id: a },
        ],
      }),
    ).rejects.toBeInstanceOf(IdempotencyConflict);
    await expect(
      store.append({
        streamId,
        expectedVersion: "any",
        events: [
          { event: contextUpdated("a", 1), event_id: b },
          { event: contextUpdated("c", 1), event_id: crypto.randomUUID() },
        ],
      }),
    ).rejects.toMatchObject({ name: "IdempotencyConflict", eventIds: [b] });
    await expect(
      store.append({
        streamId: newStream(),
        expectedVersion: "any",
        events: [{ event: started(), event_id: a }],
      }),
    ).rejects.toBeInstanceOf(IdempotencyConflict);
    expect(await countRows("workflow_events", streamId)).toBe(2);
  });

  it("refuses malformed appends and writes nothing", async () => {
    const streamId = newStream();
    const refusals = [
      store.append({ streamId, expectedVersion: "any", events: [] }),
      store.append({ streamId: "not-a-uuid", expectedVersion: "any", events: wrap(started()) }),
      store.append({ streamId, expectedVersion: -1, events: wrap(started()) }),
      store.append({ streamId, expectedVersion: 1.5, events: wrap(started()) }),
      store.append({
        streamId,
        expectedVersion: "any",
        events: [
          { event: started(), event_id: "e0b5e2d2-6a3c-4c09-9b6e-1f2a3b4c5d6e" },
          { event: contextUpdated("a", 1), event_id: "e0b5e2d2-6a3c-4c09-9b6e-1f2a3b4c5d6e" },
        ],
      }),
      store.append({ streamId, expectedVersion: "any", events: [{ event: started(), event_id: "nope" }] }),
      store.append({
        streamId,
        expectedVersion: "any",
        events: wrap(started(), contextUpdated("nul", "a\u0000b")),
      }),
    ];
    for (const refusal of refusals) await expect(refusal).rejects.toBeInstanceOf(InvalidAppend);
    expect(await store.getStreamHead(streamId)).toBeNull();
  });

  it("keeps strings that merely look like a NUL escape", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "any",
      events: wrap(started(), contextUpdated("k", "\\u0000")),
    });
    const events = await store.loadEvents(streamId);
    expect(events[1]?.event).toMatchObject({ value: "\\u0000" });
  });

  it("refuses an invalid sequence and writes nothing of the batch", async () => {
    const streamId = newStream();
    await expect(
      store.append({ streamId, expectedVersion: "any", events: wrap(contextUpdated("a", 1)) }),
    ).rejects.toBeInstanceOf(InvalidEventSequence);
    await store.append({ streamId, expectedVersion: "any", events: wrap(started()) });
    await expect(
      store.append({
        streamId,
        expectedVersion: 1,
        events: wrap(stepActivated("s"), stepCompleted("s"), stepCompleted("s")),
      }),
    ).rejects.toThrow(/step_completed for step "s"/);
    expect(await countRows("workflow_events", streamId)).toBe(1);
  });

  it("refuses a stream type that differs from the stream's", async () => {
    const streamId = newStream();
    await store.append({ streamId, expectedVersion: "any", streamType: "order", events: wrap(started()) });
    await expect(
      store.append({
        streamId,
        expectedVersion: 1,
        streamType: "invoice",
        events: wrap(contextUpdated("a", 1)),
      }),
    ).rejects.toBeInstanceOf(StreamTypeMismatch);
    const state = applyEvents(emptyWorkflowState(), [started(), contextUpdated("a", 1)]);
    await expect(
      store.append({
        streamId,
        expectedVersion: 1,
        streamType: "invoice",
        events: wrap(contextUpdated("a", 1)),
        stateAfter: state,
      }),
    ).rejects.toBeInstanceOf(StreamTypeMismatch);
    const same = await store.append({
      streamId,
      expectedVersion: 1,
      streamType: "order",
      events: wrap(contextUpdated("a", 1)),
    });
    expect(same.version).toBe(2);
  });
});

describe("snapshots", () => {
  it("writes one when a batch reaches a multiple of 50 exactly", async () => {
    const streamId = newStream();
    await store.append({ streamId, expectedVersion: "no_stream", events: wrap(started()) });
    const result = await store.append({ streamId, expectedVersion: 1, events: contextUpdates(49) });
    expect(result.snapshotVersion).toBe(50);
    expect(await snapshotVersions(streamId)).toEqual([50]);
  });

  it("writes one when a batch steps over a multiple of 50, at the version the batch reached", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: wrap(started(), ...contextUpdatesAsEvents(47)),
    });
    expect(await snapshotVersions(streamId)).toEqual([]);
    const over = await store.append({ streamId, expectedVersion: 48, events: contextUpdates(5) });
    expect(over.snapshotVersion).toBe(53);
    const none = await store.append({ streamId, expectedVersion: 53, events: contextUpdates(46) });
    expect(none.snapshotVersion).toBeNull();
    // One batch across two multiples (100 and 150) writes one snapshot, at its end.
    const twice = await store.append({ streamId, expectedVersion: 99, events: contextUpdates(60) });
    expect(twice.snapshotVersion).toBe(159);
    expect(await snapshotVersions(streamId)).toEqual([53, 159]);
    const head = await store.getStreamHead(streamId);
    expect(head?.version).toBe(159);
  });

  it("stores the state the batch reached, with a trusted stateAfter or without", async () => {
    const streamId = newStream();
    const first = [started(), ...contextUpdatesAsEvents(48)];
    await store.append({ streamId, expectedVersion: "no_stream", events: wrap(...first) });
    const batch = [stepActivated("review"), stepCompleted("review", { score: 7 })];
    const expected = applyEvents(emptyWorkflowState(), [...first, ...batch]);
    await store.append({ streamId, expectedVersion: 49, events: wrap(...batch), stateAfter: expected });
    const snapshot = await store.getLatestSnapshot(streamId);
    expect(snapshot).toMatchObject({ version: 51, schema_version: 1 });
    expect(snapshot?.state).toEqual(expected);

    const other = newStream();
    await store.append({ streamId: other, expectedVersion: "no_stream", events: wrap(...first) });
    await store.append({ streamId: other, expectedVersion: "any", events: wrap(...batch) });
    expect((await store.getLatestSnapshot(other))?.state).toEqual(expected);
  });

  it("ignores a stateAfter whose version does not fit the append and rebuilds instead", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: wrap(started(), ...contextUpdatesAsEvents(48)),
    });
    const wrong = applyEvents(emptyWorkflowState(), [started()]);
    await store.append({
      streamId,
      expectedVersion: 49,
      events: wrap(workflowCompleted()),
      stateAfter: wrong,
    });
    const snapshot = await store.getLatestSnapshot(streamId);
    expect(snapshot?.version).toBe(50);
    expect(snapshot?.state).toMatchObject({ version: 50, status: "completed" });
  });

  it("finds the newest snapshot at or below a version", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: wrap(started(), ...contextUpdatesAsEvents(119)),
    });
    expect((await store.getLatestSnapshot(streamId))?.version).toBe(120);
    expect(await store.getLatestSnapshot(streamId, 119)).toBeNull();
    // An older snapshot, as a writer that snapshotted at 60 would have left it.
    const rebuilt = await new StateRebuilder(store).rebuildState(streamId, 60);
    await pool.query(
      "INSERT INTO workflow_snapshots (stream_id, version, schema_version, state) VALUES ($1, 60, $2, $3::jsonb)",
      [streamId, STATE_SCHEMA_VERSION, JSON.stringify(rebuilt.state)],
    );
    expect(await store.getLatestSnapshot(streamId, 119)).toMatchObject({ version: 60, state: rebuilt.state });
    expect((await store.getLatestSnapshot(streamId, 120))?.version).toBe(120);
    expect(await store.getLatestSnapshot(streamId, 59)).toBeNull();
  });

  it(`keeps replay short: a rebuild starts from a snapshot at most ${SNAPSHOT_INTERVAL} events back`, async () => {
    const streamId = newStream();
    await store.append({ streamId, expectedVersion: "no_stream", events: wrap(started()) });
    let version = 1;
    for (const size of [30, 30, 30, 30, 30]) {
      await store.append({
        streamId,
        expectedVersion: version,
        events: contextUpdates(size, `v${version}_`),
      });
      version += size;
    }
    const rebuilt = await new StateRebuilder(store).rebuildState(streamId);
    expect(rebuilt.state.version).toBe(151);
    expect(rebuilt.snapshotVersion).toBe(151);
    expect(rebuilt.replayedEvents).toBe(0);
  });
});

describe("reads", () => {
  it("pages forwards and backwards", async () => {
    const streamId = newStream();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: wrap(started(), ...contextUpdatesAsEvents(9)),
    });
    const versions = async (options: Parameters<typeof store.loadEvents>[1]) =>
      (await store.loadEvents(streamId, options)).map((e) => e.version);
    expect(await versions({})).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await versions({ fromVersion: 4, limit: 3 })).toEqual([4, 5, 6]);
    expect(await versions({ direction: "backward", limit: 3 })).toEqual([10, 9, 8]);
    expect(await versions({ direction: "backward", fromVersion: 2 })).toEqual([2, 1]);
    expect(await versions({ fromVersion: 11 })).toEqual([]);
    expect(await store.loadEvents(newStream())).toEqual([]);
    const [event] = await store.loadEvents(streamId, { limit: 1 });
    expect(event?.global_position).toBeGreaterThan(0);
    expect(event?.occurred_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });
});

function contextUpdatesAsEvents(count: number) {
  return contextUpdates(count).map((item) => item.event);
}

describe("unstorable text", () => {
  it("refuses a lone surrogate, which PostgreSQL's json cannot hold, and writes nothing", async () => {
    const streamId = newStream();
    await expect(
      store.append({
        streamId,
        expectedVersion: "any",
        events: wrap(started(), contextUpdated("k", "\ud800x")),
      }),
    ).rejects.toBeInstanceOf(InvalidAppend);
    expect(await store.getStreamHead(streamId)).toBeNull();
    const paired = await store.append({
      streamId,
      expectedVersion: "any",
      events: wrap(started(), contextUpdated("k", "😀")),
    });
    expect(paired.version).toBe(2);
    expect((await store.loadEvents(streamId))[1]?.event).toMatchObject({ value: "😀" });
  });
});
