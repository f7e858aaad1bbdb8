import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import { StateRebuilder } from "../../src/events/replay";
import { SNAPSHOT_INTERVAL } from "../../src/events/store";
import type { WorkflowEvent } from "../../src/events/types";
import { applyEvent, applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState, STATE_SCHEMA_VERSION, type WorkflowState } from "../../src/state/workflow-state";
import { openTestPool } from "../support/database";
import { validWorkflowSequence } from "../support/workflow-sequences";

// The replay invariant of DESIGN.md ("Snapshots and replay"), as a property: for every
// valid sequence appended in any batching, snapshot + tail == full replay == the
// reducer applied in memory, at the head and at any earlier version.

const MAX_EVENTS = 500;
const NUM_RUNS = 25;

const pool = openTestPool();
const store = new PgEventStore(pool);
const rebuilder = new StateRebuilder(store);

/** The same store with every snapshot hidden: rebuilding from it is a full replay. */
class StoreWithoutSnapshots extends PgEventStore {
  override async getLatestSnapshot(): Promise<null> {
    return null;
  }
}
const fullReplayer = new StateRebuilder(new StoreWithoutSnapshots(pool));

afterAll(async () => {
  await pool.end();
});

interface Batch {
  size: number;
  /** Pass the correct state after the batch (trusted path) or none (the store rebuilds and checks). */
  withState: boolean;
}

interface Plan {
  /** Used in a cycle until the events run out; the last batch may be cut short. */
  batches: Batch[];
  /** Page size for reading the whole stream back with loadEvents. */
  pageSize: number;
  /** Extra versions to time-travel to, taken modulo (length + 1). */
  travelPicks: number[];
}

const plan: fc.Arbitrary<Plan> = fc.record({
  batches: fc.array(
    fc.record({
      size: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 1, max: 60 }) },
        // Sizes that land on, step over or cross two multiples of 50 more often.
        { weight: 1, arbitrary: fc.constantFrom(1, 49, 50, 51, 55, 60) },
      ),
      withState: fc.boolean(),
    }),
    { minLength: 1, maxLength: 30 },
  ),
  pageSize: fc.integer({ min: 1, max: 200 }),
  travelPicks: fc.array(fc.nat(), { maxLength: 3 }),
});

interface Written {
  /** Version before the batch. */
  from: number;
  /** Version after the batch. */
  to: number;
  withState: boolean;
}

/** states[i] is the in-memory reducer over the first i events. */
function prefixStates(events: readonly WorkflowEvent[]): WorkflowState[] {
  const states = [emptyWorkflowState()];
  let state = states[0] as WorkflowState;
  for (const event of events) {
    state = applyEvent(state, event);
    states.push(state);
  }
  return states;
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at ${index}`);
  return item;
}

function batchesFor(length: number, batches: readonly Batch[]): Written[] {
  const written: Written[] = [];
  for (let from = 0, i = 0; from < length; i++) {
    const batch = at(batches, i % batches.length);
    const to = Math.min(length, from + batch.size);
    written.push({ from, to, withState: batch.withState });
    from = to;
  }
  return written;
}

/**
 * Deep equality that also tells 0 from -0 and checks prototypes. Not toStrictEqual: it
 * compares `.constructor`, which is an own entry here when a step id or key is "constructor".
 */
function expectSame(actual: unknown, expected: unknown, what: string): void {
  expect(actual, what).toEqual(expected);
  expect(isDeepStrictEqual(actual, expected), `${what} (strictly)`).toBe(true);
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, index) => from + index);

async function snapshotRows(
  streamId: string,
): Promise<{ version: number; schemaVersion: number; state: unknown }[]> {
  const result = await pool.query(
    "SELECT version, schema_version, state FROM workflow_snapshots WHERE stream_id = $1 ORDER BY version",
    [streamId],
  );
  return result.rows.map((row: { version: string | number; schema_version: number; state: unknown }) => ({
    version: Number(row.version),
    schemaVersion: row.schema_version,
    state: row.state,
  }));
}

async function checkRun(events: WorkflowEvent[], { batches, pageSize, travelPicks }: Plan): Promise<void> {
  const streamId = crypto.randomUUID();
  const n = events.length;
  const states = prefixStates(events);
  const expected = at(states, n);
  expectSame(expected, applyEvents(emptyWorkflowState(), events), "in-memory reducer");
  expect(expected.version).toBe(n);

  // Append in batches with exact expected versions, with and without stateAfter.
  const written = batchesFor(n, batches);
  for (const batch of written) {
    const result = await store.append({
      streamId,
      expectedVersion: batch.from,
      events: events.slice(batch.from, batch.to).map((event) => ({ event })),
      ...(batch.withState ? { stateAfter: at(states, batch.to) } : {}),
    });
    const crosses = Math.floor(batch.to / SNAPSHOT_INTERVAL) > Math.floor(batch.from / SNAPSHOT_INTERVAL);
    expect(result).toMatchObject({
      streamId,
      streamType: "workflow",
      version: batch.to,
      idempotent: false,
      snapshotVersion: crosses ? batch.to : null,
    });
    expect(result.versions).toEqual(range(batch.from + 1, batch.to));
  }
  const lastBatch = at(written, written.length - 1);
  const snapshotVersions = written
    .filter((b) => Math.floor(b.to / SNAPSHOT_INTERVAL) > Math.floor(b.from / SNAPSHOT_INTERVAL))
    .map((b) => b.to);

  // (c) One snapshot per batch that crossed a multiple of 50, at the batch's end, holding the state there.
  const rows = await snapshotRows(streamId);
  expect(rows.map((row) => row.version)).toEqual(snapshotVersions);
  for (let multiple = SNAPSHOT_INTERVAL; multiple <= n; multiple += SNAPSHOT_INTERVAL) {
    const crossing = written.find((b) => b.from < multiple && multiple <= b.to);
    expect(crossing, `a batch carries the stream across ${multiple}`).toBeDefined();
    expect(
      rows.some((row) => crossing !== undefined && row.version > crossing.from && row.version <= crossing.to),
      `a snapshot exists in the batch ${JSON.stringify(crossing)} that crossed ${multiple}`,
    ).toBe(true);
  }
  for (const row of rows) {
    expect(row.schemaVersion).toBe(STATE_SCHEMA_VERSION);
    expectSame(row.state, at(states, row.version), `snapshot at version ${row.version}`);
  }

  // (a) Snapshot + tail == full replay (rebuilder without snapshots, and a paged fold) == in memory.
  const rebuilt = await rebuilder.rebuildState(streamId);
  expectSame(rebuilt.state, expected, "snapshot + tail");
  expect(rebuilt.skippedSnapshots).toEqual([]);
  const newestSnapshot = snapshotVersions.at(-1) ?? null;
  expect(rebuilt.snapshotVersion).toBe(newestSnapshot);
  expect(rebuilt.replayedEvents).toBe(n - (newestSnapshot ?? 0));

  // The actor's cold load: the same from one statement (head, snapshot and tail).
  const loaded = await store.loadStream(streamId);
  expect(loaded).not.toBeNull();
  if (loaded !== null) expect(await rebuilder.rebuildLoaded(loaded)).toEqual(rebuilt);

  const full = await fullReplayer.rebuildState(streamId);
  expectSame(full.state, expected, "full replay");
  expect(full.snapshotVersion).toBeNull();
  expect(full.replayedEvents).toBe(n);

  let folded = emptyWorkflowState();
  for (let from = 1; from <= n; from += pageSize) {
    const page = await store.loadEvents(streamId, { fromVersion: from, limit: pageSize });
    expect(page.map((stored) => stored.version)).toEqual(range(from, Math.min(n, from + pageSize - 1)));
    for (const stored of page) {
      expect(stored.stream_id).toBe(streamId);
      expectSame(stored.event, at(events, stored.version - 1), `event ${stored.version} read back`);
      folded = applyEvent(folded, stored.event);
    }
  }
  expectSame(folded, expected, "paged fold of loadEvents");

  // (b) "Rebuilding never replays more than 50 events plus one batch" (and, since the
  // snapshot is at the end of the batch that crossed the last multiple, fewer than 50).
  expect(rebuilt.replayedEvents).toBeLessThanOrEqual(SNAPSHOT_INTERVAL + (lastBatch.to - lastBatch.from));
  expect(rebuilt.replayedEvents).toBeLessThan(SNAPSHOT_INTERVAL);

  // (d) Time travel, on both sides of every snapshot boundary and at a few random versions.
  const targets = new Set<number>([0, 1, n, ...travelPicks.map((pick) => pick % (n + 1))]);
  for (let multiple = SNAPSHOT_INTERVAL; multiple - 1 <= n; multiple += SNAPSHOT_INTERVAL) {
    for (const version of [multiple - 1, multiple, multiple + 1]) if (version <= n) targets.add(version);
  }
  for (const version of snapshotVersions) for (const v of [version - 1, version, version + 1]) targets.add(v);
  for (const target of [...targets].filter((v) => v <= n).sort((a, b) => a - b)) {
    const travelled = await rebuilder.rebuildState(streamId, target);
    expectSame(travelled.state, at(states, target), `state at version ${target}`);
    const usable = snapshotVersions.filter((v) => v <= target).at(-1) ?? null;
    expect(travelled.snapshotVersion, `snapshot used at version ${target}`).toBe(usable);
    expect(travelled.replayedEvents).toBe(target - (usable ?? 0));
    const loadedAt = await store.loadStream(streamId, target);
    if (loadedAt === null) throw new Error(`stream ${streamId} did not load`);
    expect(await rebuilder.rebuildLoaded(loadedAt, target), `loaded state at ${target}`).toEqual(travelled);
  }
}

/** A fixed long sequence for the hand-picked batchings below. */
function longSample(): WorkflowEvent[] {
  const samples = fc.sample(validWorkflowSequence(MAX_EVENTS), { seed: 20260301, numRuns: 20 });
  const longest = samples.reduce((a, b) => (b.length > a.length ? b : a));
  if (longest.length < 400) throw new Error(`expected a sample of 400+ events, got ${longest.length}`);
  return longest;
}

describe("replay property: snapshot + tail == full replay == in-memory reducer", () => {
  it(`holds for ${NUM_RUNS} random valid sequences of up to ${MAX_EVENTS} events in random batches`, async () => {
    const long = longSample();
    // 49 | 52 crosses 50 and 100 | 45 ends on 149 | 2 steps over 150 | ... | 30 lands on 500.
    const handPicked: Plan = {
      batches: [49, 52, 3, 45, 2, 1, 60, 60, 48, 50, 50, 50, 30].map((size, index) => ({
        size,
        withState: index % 2 === 0,
      })),
      pageSize: 97,
      travelPicks: [123],
    };
    const fiftyAtATime: Plan = { batches: [{ size: 50, withState: false }], pageSize: 200, travelPicks: [] };
    await fc.assert(
      fc.asyncProperty(validWorkflowSequence(MAX_EVENTS), plan, (events, p) => checkRun(events, p)),
      {
        numRuns: NUM_RUNS,
        // Shrinking a 500-event counterexample against a database is slow: stop it in
        // time to report the smallest failure found so far (and fail if runs are cut).
        interruptAfterTimeLimit: 120_000,
        markInterruptAsFailure: true,
        examples: [
          [long, handPicked],
          [long, fiftyAtATime],
        ],
      },
    );
  }, 170_000);
});
