import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { PgEventStore } from "../../src/events/postgres";
import { StateRebuilder } from "../../src/events/replay";
import { ConcurrencyConflict } from "../../src/events/store-errors";
import { contextUpdates, started, wrap } from "../support/event-builders";

// The store as the Worker runs it: the Neon driver inside workerd, over the
// runtime's own WebSocket, through the bridge to the test database.

it("appends, snapshots and rebuilds from inside workerd", async () => {
  const pool = createPool(readDatabaseSettings(env), { max: 2 });
  try {
    const store = new PgEventStore(pool);
    const streamId = crypto.randomUUID();
    const first = await store.append({ streamId, expectedVersion: "no_stream", events: wrap(started()) });
    expect(first.versions).toEqual([1]);
    const second = await store.append({ streamId, expectedVersion: 1, events: contextUpdates(54) });
    expect(second).toMatchObject({ version: 55, snapshotVersion: 55 });
    await expect(
      store.append({ streamId, expectedVersion: 1, events: contextUpdates(1, "late") }),
    ).rejects.toBeInstanceOf(ConcurrencyConflict);
    const rebuilt = await new StateRebuilder(store).rebuildState(streamId);
    expect(rebuilt).toMatchObject({ snapshotVersion: 55, replayedEvents: 0 });
    expect(rebuilt.state).toMatchObject({ version: 55, status: "running" });
    expect(Object.keys(rebuilt.state.context)).toHaveLength(54);
    const atTen = await new StateRebuilder(store).rebuildState(streamId, 10);
    expect(atTen).toMatchObject({ snapshotVersion: null, replayedEvents: 10 });
    expect(atTen.state.context).toEqual({ k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8 });
  } finally {
    await pool.end();
  }
});
