import { afterAll, describe, expect, it } from "vitest";
import { countStatements } from "../../src/db/sql-client";
import { PgEventStore } from "../../src/events/postgres";
import { StateRebuilder } from "../../src/events/replay";
import { ConcurrencyConflict, IdempotencyConflict } from "../../src/events/store-errors";
import { applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import { openTestPool } from "../support/database";
import { contextUpdated, contextUpdates, started } from "../support/event-builders";

// The store's statements, counted by the counting layer around the driver: the append
// with an exact expected version and a trusted state after (the actor's way) is one
// statement, with or without caller-chosen ids, a repeat included; a stream loads with one.

const pool = openTestPool();
let sent = 0;
const store = new PgEventStore(
  countStatements(pool, () => {
    sent++;
  }),
);
afterAll(() => pool.end());

async function count<T>(work: () => Promise<T>): Promise<{ value: T; statements: number }> {
  const before = sent;
  const value = await work();
  return { value, statements: sent - before };
}

const startedState = (event = started()) => ({ event, state: applyEvents(emptyWorkflowState(), [event]) });

describe("append with an exact version and the state after", () => {
  it("is one statement, with and without event ids", async () => {
    const streamId = crypto.randomUUID();
    const first = startedState();
    const created = await count(() =>
      store.append({
        streamId,
        expectedVersion: "no_stream",
        events: [{ event: first.event }],
        stateAfter: first.state,
      }),
    );
    expect(created).toMatchObject({ statements: 1, value: { versions: [1] } });
    const next = contextUpdated("a", 1);
    const withIds = await count(() =>
      store.append({
        streamId,
        expectedVersion: 1,
        events: [{ event: next, event_id: crypto.randomUUID() }],
        stateAfter: applyEvents(first.state, [next]),
      }),
    );
    expect(withIds).toMatchObject({ statements: 1, value: { versions: [2], idempotent: false } });
  });

  it("answers a repeat with one statement that writes nothing", async () => {
    const streamId = crypto.randomUUID();
    const first = startedState();
    const events = [{ event: first.event, event_id: crypto.randomUUID() }];
    await store.append({ streamId, expectedVersion: "no_stream", events, stateAfter: first.state });
    const repeat = await count(() =>
      store.append({ streamId, expectedVersion: "no_stream", events, stateAfter: first.state }),
    );
    expect(repeat).toMatchObject({
      statements: 1,
      value: { idempotent: true, versions: [1], streamType: "workflow" },
    });
    expect((await store.getStreamHead(streamId))?.version).toBe(1);
  });

  it("answers an id stored in another stream with one statement: IdempotencyConflict, nothing written", async () => {
    const eventId = crypto.randomUUID();
    const first = startedState();
    await store.append({
      streamId: crypto.randomUUID(),
      expectedVersion: "no_stream",
      events: [{ event: first.event, event_id: eventId }],
      stateAfter: first.state,
    });
    const streamId = crypto.randomUUID();
    const before = sent;
    const reused = await store
      .append({
        streamId,
        expectedVersion: "no_stream",
        events: [{ event: first.event, event_id: eventId }],
        stateAfter: first.state,
      })
      .catch((error: unknown) => error);
    expect(reused).toBeInstanceOf(IdempotencyConflict);
    expect(sent - before).toBe(1);
    expect(await store.getStreamHead(streamId)).toBeNull();
  });

  it("writes nothing of a batch one of whose ids is stored: all or nothing", async () => {
    const streamId = crypto.randomUUID();
    const first = startedState();
    const taken = crypto.randomUUID();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: [{ event: first.event, event_id: taken }],
      stateAfter: first.state,
    });
    const events = [contextUpdated("a", 1), contextUpdated("b", 2)];
    const refused = await store
      .append({
        streamId,
        expectedVersion: 1,
        events: [
          { event: events[0] ?? first.event, event_id: crypto.randomUUID() },
          { event: events[1] ?? first.event, event_id: taken },
        ],
        stateAfter: applyEvents(first.state, events),
      })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(IdempotencyConflict);
    expect(await store.loadEvents(streamId)).toHaveLength(1);
  });

  it("reports a moved stream with one statement when the statement sees the move", async () => {
    const streamId = crypto.randomUUID();
    const first = startedState();
    await store.append({
      streamId,
      expectedVersion: "no_stream",
      events: [{ event: first.event }],
      stateAfter: first.state,
    });
    await store.append({ streamId, expectedVersion: 1, events: contextUpdates(1) });
    const next = contextUpdated("late", 1);
    const stale = await count(() =>
      store
        .append({
          streamId,
          expectedVersion: 1,
          events: [{ event: next }],
          stateAfter: applyEvents(first.state, [next]),
        })
        .catch((error: unknown) => error),
    );
    expect(stale.value).toBeInstanceOf(ConcurrencyConflict);
    expect(stale.value).toMatchObject({ expected: 1, actual: 2 });
    expect(stale.statements).toBe(1);
  });
});

describe("loadStream", () => {
  it("returns head, newest snapshot and tail in one statement, and the rebuild needs nothing more", async () => {
    const streamId = crypto.randomUUID();
    await store.append({ streamId, expectedVersion: "no_stream", events: [{ event: started() }] });
    await store.append({ streamId, expectedVersion: 1, events: contextUpdates(60) });
    await store.append({ streamId, expectedVersion: 61, events: contextUpdates(7, "t") });
    const loaded = await count(() => store.loadStream(streamId));
    expect(loaded.statements).toBe(1);
    expect(loaded.value?.head.version).toBe(68);
    expect(loaded.value?.snapshot?.version).toBe(61);
    expect(loaded.value?.events.map((event) => event.version)).toEqual([62, 63, 64, 65, 66, 67, 68]);
    const rebuilt = await count(() => new StateRebuilder(store).rebuildLoaded(loaded.value ?? never()));
    expect(rebuilt.statements).toBe(0);
    expect(rebuilt.value.state).toEqual((await new StateRebuilder(store).rebuildState(streamId)).state);

    const atTen = await count(() => store.loadStream(streamId, 10));
    expect(atTen.statements).toBe(1);
    expect(atTen.value?.snapshot).toBeNull();
    expect(atTen.value?.events).toHaveLength(10);
    const travelled = await count(() => new StateRebuilder(store).rebuildLoaded(atTen.value ?? never(), 10));
    expect(travelled.statements).toBe(0);
    expect(travelled.value.state).toEqual((await new StateRebuilder(store).rebuildState(streamId, 10)).state);
  });

  it("answers null for a stream that does not exist", async () => {
    expect(await count(() => store.loadStream(crypto.randomUUID()))).toEqual({ value: null, statements: 1 });
  });
});

function never(): never {
  throw new Error("expected a loaded stream");
}
