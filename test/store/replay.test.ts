import { afterAll, describe, expect, it, vi } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import {
  ReplayInvalidSequence,
  ReplayStoreError,
  SnapshotCorrupted,
  StateRebuilder,
} from "../../src/events/replay";
import { StreamNotFound, VersionNotFound } from "../../src/events/store-errors";
import type { WorkflowEvent } from "../../src/events/types";
import { applyEvents } from "../../src/state/apply-event";
import { InvalidEventSequence } from "../../src/state/invalid-event-sequence";
import { emptyWorkflowState, type WorkflowState } from "../../src/state/workflow-state";
import { openTestPool } from "../support/database";
import { contextUpdated, started, stepActivated, stepCompleted } from "../support/event-builders";

// Deterministic replay cases: snapshots that must be skipped, and logs that cannot be
// replayed. Each test works on its own fresh stream.

const pool = openTestPool();
const store = new PgEventStore(pool);

afterAll(async () => {
  await pool.end();
});

interface Stream {
  streamId: string;
  events: WorkflowEvent[];
  /** The in-memory reducer over the first `version` events. */
  stateAt(version: number): WorkflowState;
}

/** workflow_started then context updates k1, k2, …, appended `batchSize` at a time (snapshots at each crossing). */
async function createStream(length: number, batchSize: number): Promise<Stream> {
  const streamId = crypto.randomUUID();
  const events: WorkflowEvent[] = [started()];
  for (let i = 1; i < length; i++) events.push(contextUpdated(`k${i}`, { index: i, label: `é-${i}-✓` }));
  for (let from = 0; from < length; from += batchSize) {
    const to = Math.min(length, from + batchSize);
    await store.append({
      streamId,
      expectedVersion: from,
      events: events.slice(from, to).map((event) => ({ event })),
    });
  }
  return {
    streamId,
    events,
    stateAt: (version) => applyEvents(emptyWorkflowState(), events.slice(0, version)),
  };
}

async function snapshotVersions(streamId: string): Promise<number[]> {
  const result = await pool.query(
    "SELECT version FROM workflow_snapshots WHERE stream_id = $1 ORDER BY version",
    [streamId],
  );
  return result.rows.map((row: { version: string | number }) => Number(row.version));
}

async function execute(sql: string, values: unknown[]): Promise<number> {
  const result = await pool.query(sql, values);
  return result.rowCount ?? 0;
}

/** A rebuilder that records every snapshot it is told was skipped. */
function recordingRebuilder(): { rebuilder: StateRebuilder; reported: SnapshotCorrupted[] } {
  const reported: SnapshotCorrupted[] = [];
  const rebuilder = new StateRebuilder(store, { onSnapshotSkipped: (report) => reported.push(report) });
  return { rebuilder, reported };
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected the promise to reject, but it resolved");
    },
    (error: unknown) => error,
  );
}

/** Writes an event row and moves the head behind the store's back, as a foreign writer would. */
async function writeBehindTheStore(streamId: string, version: number, event: WorkflowEvent): Promise<void> {
  await execute(
    `INSERT INTO workflow_events (event_id, stream_id, stream_type, version, event_type, event)
     VALUES ($1, $2, 'workflow', $3, $4, $5::jsonb)`,
    [crypto.randomUUID(), streamId, version, event.type, JSON.stringify(event)],
  );
  expect(
    await execute("UPDATE workflow_streams SET version = $2, updated_at = now() WHERE stream_id = $1", [
      streamId,
      version,
    ]),
  ).toBe(1);
}

describe("StateRebuilder skips snapshots it cannot trust", () => {
  it("starts from the newest snapshot when every snapshot is sound", async () => {
    const stream = await createStream(120, 10);
    expect(await snapshotVersions(stream.streamId)).toEqual([50, 100]);
    const { rebuilder, reported } = recordingRebuilder();
    const rebuilt = await rebuilder.rebuildState(stream.streamId);
    expect(rebuilt).toEqual({
      state: stream.stateAt(120),
      snapshotVersion: 100,
      replayedEvents: 20,
      skippedSnapshots: [],
    });
    expect(reported).toEqual([]);
  });

  it("skips a snapshot whose state does not match the schema and falls back to the older one", async () => {
    const stream = await createStream(120, 10);
    expect(
      await execute(
        `UPDATE workflow_snapshots SET state = '{"version": "oops"}'::jsonb WHERE stream_id = $1 AND version = 100`,
        [stream.streamId],
      ),
    ).toBe(1);
    const { rebuilder, reported } = recordingRebuilder();
    const rebuilt = await rebuilder.rebuildState(stream.streamId);

    expect(rebuilt.state).toEqual(stream.stateAt(120));
    expect(rebuilt.state.context.k119).toEqual({ index: 119, label: "é-119-✓" });
    expect(rebuilt.snapshotVersion).toBe(50);
    expect(rebuilt.replayedEvents).toBe(70);
    expect(rebuilt.skippedSnapshots).toHaveLength(1);
    const [skipped] = rebuilt.skippedSnapshots;
    expect(skipped).toBeInstanceOf(SnapshotCorrupted);
    expect(skipped).toMatchObject({ name: "SnapshotCorrupted", streamId: stream.streamId, version: 100 });
    expect(skipped?.reason).toMatch(/does not match the schema/);
    expect(skipped?.reason).toMatch(/version/);
    expect(skipped?.message).toContain(`at version 100`);
    expect(reported).toEqual(rebuilt.skippedSnapshots);
    expect(reported[0]).toBe(skipped);

    // From one load (the actor's cold start) the same: the loaded snapshot is skipped, the older one read.
    const loaded = await store.loadStream(stream.streamId);
    expect(loaded?.snapshot?.version).toBe(100);
    const fromLoad = recordingRebuilder();
    expect(await fromLoad.rebuilder.rebuildLoaded(loaded ?? expect.fail("no load"))).toEqual(rebuilt);
    expect(fromLoad.reported).toHaveLength(1);
  });

  it("skips a snapshot of another state schema version", async () => {
    const stream = await createStream(120, 10);
    expect(
      await execute(
        "UPDATE workflow_snapshots SET schema_version = 0 WHERE stream_id = $1 AND version = 100",
        [stream.streamId],
      ),
    ).toBe(1);
    const { rebuilder, reported } = recordingRebuilder();
    const rebuilt = await rebuilder.rebuildState(stream.streamId);

    expect(rebuilt.state).toEqual(stream.stateAt(120));
    expect(rebuilt.snapshotVersion).toBe(50);
    expect(rebuilt.replayedEvents).toBe(70);
    expect(rebuilt.skippedSnapshots.map((s) => [s.version, s.name])).toEqual([[100, "SnapshotCorrupted"]]);
    expect(rebuilt.skippedSnapshots[0]?.reason).toMatch(/schema version 0/);
    expect(reported).toEqual(rebuilt.skippedSnapshots);
  });

  it("replays the whole log when no snapshot is usable, reporting each one newest first", async () => {
    const stream = await createStream(120, 10);
    await execute(
      `UPDATE workflow_snapshots SET state = '{"version": "oops"}'::jsonb WHERE stream_id = $1 AND version = 100`,
      [stream.streamId],
    );
    await execute("UPDATE workflow_snapshots SET schema_version = 0 WHERE stream_id = $1 AND version = 50", [
      stream.streamId,
    ]);
    const { rebuilder, reported } = recordingRebuilder();
    const rebuilt = await rebuilder.rebuildState(stream.streamId);

    expect(rebuilt.state).toEqual(stream.stateAt(120));
    expect(rebuilt.snapshotVersion).toBeNull();
    expect(rebuilt.replayedEvents).toBe(120);
    expect(rebuilt.skippedSnapshots.map((s) => s.version)).toEqual([100, 50]);
    expect(rebuilt.skippedSnapshots[0]?.reason).toMatch(/does not match the schema/);
    expect(rebuilt.skippedSnapshots[1]?.reason).toMatch(/schema version 0/);
    expect(reported.map((s) => s.version)).toEqual([100, 50]);
  });

  it("logs one JSON line per skipped snapshot when no callback is given", async () => {
    const stream = await createStream(120, 10);
    await execute(
      `UPDATE workflow_snapshots SET state = '{"version": "oops"}'::jsonb WHERE stream_id = $1 AND version = 100`,
      [stream.streamId],
    );
    await execute("UPDATE workflow_snapshots SET schema_version = 0 WHERE stream_id = $1 AND version = 50", [
      stream.streamId,
    ]);
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const rebuilt = await new StateRebuilder(store).rebuildState(stream.streamId);
      expect(rebuilt.state).toEqual(stream.stateAt(120));
      const lines = warnings.mock.calls.map(([line]) => JSON.parse(String(line)));
      expect(lines).toEqual(
        rebuilt.skippedSnapshots.map((skipped) => ({
          time: expect.any(String),
          event: "snapshot_skipped",
          level: "warn",
          stream_id: stream.streamId,
          code: "corrupt_data",
          version: skipped.version,
          cause: skipped.reason,
        })),
      );
      expect(lines.map((line) => line.version)).toEqual([100, 50]);
    } finally {
      warnings.mockRestore();
    }
  });

  it("skips a schema-valid snapshot whose state.version disagrees with its row", async () => {
    const stream = await createStream(120, 10);
    // The state of version 50 stored as the snapshot of version 100: valid on its own,
    // but replaying events 101.. onto it would lose k51..k100.
    expect(
      await execute(
        `UPDATE workflow_snapshots SET state = (
           SELECT state FROM workflow_snapshots WHERE stream_id = $1 AND version = 50
         ) WHERE stream_id = $1 AND version = 100`,
        [stream.streamId],
      ),
    ).toBe(1);
    const { rebuilder, reported } = recordingRebuilder();
    const rebuilt = await rebuilder.rebuildState(stream.streamId);

    expect(rebuilt.state).toEqual(stream.stateAt(120));
    expect(Object.keys(rebuilt.state.context)).toHaveLength(119);
    expect(rebuilt.snapshotVersion).toBe(50);
    expect(rebuilt.skippedSnapshots).toHaveLength(1);
    expect(rebuilt.skippedSnapshots[0]?.version).toBe(100);
    expect(rebuilt.skippedSnapshots[0]?.reason).toMatch(/state is at version 50 but the row says 100/);
    expect(reported).toHaveLength(1);
  });

  it("skips a snapshot whose state.version alone was changed", async () => {
    const stream = await createStream(120, 10);
    await execute(
      `UPDATE workflow_snapshots SET state = jsonb_set(state, '{version}', '99'::jsonb)
        WHERE stream_id = $1 AND version = 100`,
      [stream.streamId],
    );
    const rebuilt = await new StateRebuilder(store).rebuildState(stream.streamId);
    expect(rebuilt.state).toEqual(stream.stateAt(120));
    expect(rebuilt.snapshotVersion).toBe(50);
    expect(rebuilt.skippedSnapshots[0]?.reason).toMatch(/99.*100/);
  });

  it("time travel skips an unusable snapshot below the target and ignores those above it", async () => {
    const stream = await createStream(120, 10);
    await execute("UPDATE workflow_snapshots SET schema_version = 0 WHERE stream_id = $1 AND version = 50", [
      stream.streamId,
    ]);
    const { rebuilder, reported } = recordingRebuilder();

    const at60 = await rebuilder.rebuildState(stream.streamId, 60);
    expect(at60.state).toEqual(stream.stateAt(60));
    expect(at60.snapshotVersion).toBeNull();
    expect(at60.replayedEvents).toBe(60);
    expect(at60.skippedSnapshots.map((s) => s.version)).toEqual([50]);

    const at110 = await rebuilder.rebuildState(stream.streamId, 110);
    expect(at110.state).toEqual(stream.stateAt(110));
    expect(at110.snapshotVersion).toBe(100);
    expect(at110.skippedSnapshots).toEqual([]);

    const at49 = await rebuilder.rebuildState(stream.streamId, 49);
    expect(at49.state).toEqual(stream.stateAt(49));
    expect(at49.skippedSnapshots).toEqual([]);
    expect(reported.map((s) => s.version)).toEqual([50]);
  });

  it("an append without stateAfter builds on the right state past a skipped snapshot", async () => {
    const stream = await createStream(120, 10);
    await execute(
      `UPDATE workflow_snapshots SET state = '{"version": "oops"}'::jsonb WHERE stream_id = $1 AND version = 100`,
      [stream.streamId],
    );
    const more = Array.from({ length: 40 }, (_, i) => contextUpdated(`late${i}`, [i, "ü"]));
    const result = await store.append({
      streamId: stream.streamId,
      expectedVersion: 120,
      events: more.map((event) => ({ event })),
    });
    expect(result.version).toBe(160);
    expect(result.snapshotVersion).toBe(160);
    const expected = applyEvents(emptyWorkflowState(), [...stream.events, ...more]);
    const snapshot = await store.getLatestSnapshot(stream.streamId);
    expect(snapshot?.version).toBe(160);
    expect(snapshot?.state).toEqual(expected);
    const rebuilt = await new StateRebuilder(store).rebuildState(stream.streamId);
    expect(rebuilt).toEqual({
      state: expected,
      snapshotVersion: 160,
      replayedEvents: 0,
      skippedSnapshots: [],
    });
  });
});

describe("StateRebuilder refuses what it cannot rebuild", () => {
  it("rejects an unknown stream with ReplayStoreError caused by StreamNotFound", async () => {
    const streamId = crypto.randomUUID();
    const error = await rejectionOf(new StateRebuilder(store).rebuildState(streamId));
    expect(error).toBeInstanceOf(ReplayStoreError);
    expect(error).toMatchObject({ name: "ReplayStoreError" });
    const cause = (error as ReplayStoreError).cause;
    expect(cause).toBeInstanceOf(StreamNotFound);
    expect(cause).toMatchObject({ code: "stream_not_found", streamId });
    expect((error as Error).message).toContain(streamId);
  });

  it("rejects a version beyond the head with ReplayStoreError caused by VersionNotFound", async () => {
    const stream = await createStream(7, 7);
    const rebuilder = new StateRebuilder(store);
    const error = await rejectionOf(rebuilder.rebuildState(stream.streamId, 8));
    expect(error).toBeInstanceOf(ReplayStoreError);
    const cause = (error as ReplayStoreError).cause;
    expect(cause).toBeInstanceOf(VersionNotFound);
    expect(cause).toMatchObject({
      code: "version_not_found",
      streamId: stream.streamId,
      requested: 8,
      head: 7,
    });

    for (const bad of [-1, 2.5, Number.NaN]) {
      const refused = await rejectionOf(rebuilder.rebuildState(stream.streamId, bad));
      expect(refused, `version ${bad}`).toBeInstanceOf(ReplayStoreError);
      expect((refused as ReplayStoreError).cause, `version ${bad}`).toBeInstanceOf(VersionNotFound);
    }
    // The head itself and 0 are fine.
    expect((await rebuilder.rebuildState(stream.streamId, 7)).state).toEqual(stream.stateAt(7));
    expect((await rebuilder.rebuildState(stream.streamId, 0)).state).toEqual(emptyWorkflowState());
  });

  it("rejects a log holding an invalid sequence with ReplayInvalidSequence naming the version", async () => {
    const stream = await createStream(3, 3);
    await writeBehindTheStore(stream.streamId, 4, started());
    const rebuilder = new StateRebuilder(store);

    const error = await rejectionOf(rebuilder.rebuildState(stream.streamId));
    expect(error).toBeInstanceOf(ReplayInvalidSequence);
    expect(error).toMatchObject({
      name: "ReplayInvalidSequence",
      code: "corrupt_data",
      streamId: stream.streamId,
      version: 4,
    });
    expect((error as Error).message).toContain("event 4 is invalid");
    const cause = (error as ReplayInvalidSequence).cause;
    expect(cause).toBeInstanceOf(InvalidEventSequence);
    expect(cause).toMatchObject({ eventType: "workflow_started", atVersion: 3, status: "running" });

    // Versions before the bad event still rebuild.
    expect((await rebuilder.rebuildState(stream.streamId, 3)).state).toEqual(stream.stateAt(3));
  });

  it("rejects an invalid event in the tail after a snapshot", async () => {
    const stream = await createStream(52, 52);
    expect(await snapshotVersions(stream.streamId)).toEqual([52]);
    await writeBehindTheStore(stream.streamId, 53, stepCompleted("never-activated"));

    const error = await rejectionOf(new StateRebuilder(store).rebuildState(stream.streamId));
    expect(error).toBeInstanceOf(ReplayInvalidSequence);
    expect(error).toMatchObject({ streamId: stream.streamId, version: 53 });
    expect((error as ReplayInvalidSequence).cause).toMatchObject({
      eventType: "step_completed",
      stepId: "never-activated",
      atVersion: 52,
    });
    expect((error as Error).message).toContain('"never-activated"');
  });

  it("rejects a log with a gap, naming the version found where another was expected", async () => {
    const stream = await createStream(3, 3);
    await writeBehindTheStore(stream.streamId, 5, stepActivated("review"));

    const error = await rejectionOf(new StateRebuilder(store).rebuildState(stream.streamId));
    expect(error).toBeInstanceOf(ReplayInvalidSequence);
    expect(error).toMatchObject({ streamId: stream.streamId, version: 5 });
    expect((error as Error).message).toMatch(/expected event 4 next but the log holds 5/);
  });
});
