import { afterAll, expect, it } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import { openTestPool } from "../support/database";
import { contextUpdated, started } from "../support/event-builders";

// Reads of events are cut by size (src/events/page-bytes.ts: 4 MiB of event and
// metadata JSON after the first event), so that no response over HTTP passes 10 MiB.

const pool = openTestPool(2);
const store = new PgEventStore(pool);
afterAll(() => pool.end());

const big = (index: number) => `${index}`.padEnd(900_000, "x");

it("cuts a page where its events pass the byte budget, forward and backward, and says so", async () => {
  const streamId = crypto.randomUUID();
  await store.append({ streamId, expectedVersion: "no_stream", events: [{ event: started() }] });
  for (let index = 0; index < 8; index++) {
    await store.append({
      streamId,
      expectedVersion: index + 1,
      events: [{ event: contextUpdated(`big${index}`, big(index)) }],
    });
  }
  // Forward: 1 (small), then 2..6 while fewer than 4 MiB come before; 7 would start at about 4.5 MB.
  const forward = await store.loadEventsPage(streamId, { limit: 1000 });
  expect(forward.events.map((event) => event.version)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(forward.cut).toBe(true);
  const rest = await store.loadEventsPage(streamId, { fromVersion: 7, limit: 1000 });
  expect(rest).toMatchObject({ cut: false });
  expect(rest.events.map((event) => event.version)).toEqual([7, 8, 9]);
  // Backward from the head: 9 down to 5.
  const backward = await store.loadEventsPage(streamId, { direction: "backward", limit: 1000 });
  expect(backward.events.map((event) => event.version)).toEqual([9, 8, 7, 6, 5]);
  expect(backward.cut).toBe(true);
  // A limit below the cut is just a limit; one event larger than the budget would still come alone.
  expect(await store.loadEventsPage(streamId, { fromVersion: 2, limit: 3 })).toMatchObject({ cut: false });
  expect(
    (await store.loadEvents(streamId, { fromVersion: 2, limit: 3 })).map((event) => event.version),
  ).toEqual([2, 3, 4]);
  // The cold load's tail is cut the same way, and the rebuild reads on.
  const loaded = await store.loadStream(streamId);
  expect(loaded?.events.map((event) => event.version)).toEqual([1, 2, 3, 4, 5, 6]);
});
