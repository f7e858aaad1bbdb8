import { afterAll, expect, it } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import { ConcurrencyConflict } from "../../src/events/store-errors";
import { openTestPool } from "../support/database";
import { contextUpdated, started, wrap } from "../support/event-builders";

// Optimistic concurrency is enforced by the database, not by the caller: many
// writers, each on its own connection, race for the same versions.

const WRITERS = 16;
const pool = openTestPool(WRITERS + 2);
const store = new PgEventStore(pool);
afterAll(() => pool.end());

interface StoredRow {
  event_id: string;
  version: number;
}

async function storedRows(streamId: string): Promise<StoredRow[]> {
  const result = await pool.query(
    "SELECT event_id::text, version::int AS version FROM workflow_events WHERE stream_id = $1 ORDER BY version",
    [streamId],
  );
  return result.rows as StoredRow[];
}

async function newStartedStream(): Promise<string> {
  const streamId = crypto.randomUUID();
  await store.append({ streamId, expectedVersion: "no_stream", events: wrap(started()) });
  return streamId;
}

it(`lets exactly one of ${WRITERS} writers with the same expected version win, round after round`, async () => {
  const streamId = await newStartedStream();
  for (let round = 1; round <= 5; round++) {
    const outcomes = await Promise.allSettled(
      Array.from({ length: WRITERS }, (_, writer) =>
        store.append({
          streamId,
          expectedVersion: round,
          events: [{ event: contextUpdated(`w${writer}`, round), event_id: crypto.randomUUID() }],
        }),
      ),
    );
    const winners = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const losers = outcomes.filter((outcome) => outcome.status === "rejected");
    expect(winners).toHaveLength(1);
    expect(winners[0]?.value.versions).toEqual([round + 1]);
    for (const loser of losers) {
      expect(loser.reason).toBeInstanceOf(ConcurrencyConflict);
      expect(loser.reason).toMatchObject({ expected: round, actual: round + 1 });
    }
  }
  const rows = await storedRows(streamId);
  expect(rows.map((row) => row.version)).toEqual([1, 2, 3, 4, 5, 6]);
});

it(`keeps the log whole while ${WRITERS} writers retry with expected versions until each stored its events`, async () => {
  const streamId = await newStartedStream();
  const perWriter = 6;
  const acknowledged = new Map<string, number>();
  let conflicts = 0;
  const unexpected: unknown[] = [];

  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      for (let n = 0; n < perWriter; n++) {
        const eventId = crypto.randomUUID();
        for (;;) {
          const head = await store.getStreamHead(streamId);
          try {
            const result = await store.append({
              streamId,
              expectedVersion: head?.version ?? 0,
              events: [{ event: contextUpdated(`w${writer}`, n), event_id: eventId }],
            });
            acknowledged.set(eventId, result.versions[0] ?? -1);
            break;
          } catch (error) {
            if (error instanceof ConcurrencyConflict) {
              conflicts++;
              continue;
            }
            unexpected.push(error);
            return;
          }
        }
      }
    }),
  );

  expect(unexpected).toEqual([]);
  const total = WRITERS * perWriter;
  expect(acknowledged.size).toBe(total);
  const rows = await storedRows(streamId);
  // No gap and no duplicate version: exactly 1..total+1.
  expect(rows.map((row) => row.version)).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
  // Every acknowledged event stored exactly once, at the version it was acknowledged with.
  const byId = new Map(rows.map((row) => [row.event_id, row.version]));
  expect(byId.size).toBe(rows.length);
  for (const [eventId, version] of acknowledged) expect(byId.get(eventId)).toBe(version);
  // On a real server the writers overlap, so some must have lost a race.
  expect(conflicts).toBeGreaterThan(0);
});

it(`serialises ${WRITERS} writers appending with expected version any`, async () => {
  const streamId = await newStartedStream();
  const results = await Promise.all(
    Array.from({ length: WRITERS }, (_, writer) =>
      store.append({
        streamId,
        expectedVersion: "any",
        events: [
          { event: contextUpdated(`a${writer}`, 1), event_id: crypto.randomUUID() },
          { event: contextUpdated(`b${writer}`, 2), event_id: crypto.randomUUID() },
        ],
      }),
    ),
  );
  const versions = results.flatMap((result) => result.versions).sort((a, b) => a - b);
  expect(versions).toEqual(Array.from({ length: 2 * WRITERS }, (_, i) => i + 2));
  for (const result of results) expect(result.versions[1]).toBe((result.versions[0] ?? 0) + 1);
  const rows = await storedRows(streamId);
  expect(rows).toHaveLength(2 * WRITERS + 1);
});

it("answers racing identical appends once, and the rest as idempotent repeats", async () => {
  const streamId = await newStartedStream();
  const events = [
    { event: contextUpdated("same", 1), event_id: crypto.randomUUID() },
    { event: contextUpdated("same", 2), event_id: crypto.randomUUID() },
  ];
  const results = await Promise.all(
    Array.from({ length: 8 }, () => store.append({ streamId, expectedVersion: "any", events })),
  );
  expect(results.filter((result) => !result.idempotent)).toHaveLength(1);
  for (const result of results) expect(result.versions).toEqual([2, 3]);
  expect(await storedRows(streamId)).toHaveLength(3);
});
