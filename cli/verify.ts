import type { Pool } from "@neondatabase/serverless";
import type { GlyphClient } from "../client/index";
import { WorkflowEvent } from "../src/events/types";
import { applyEvent } from "../src/state/apply-event";
import { emptyWorkflowState, STATE_SCHEMA_VERSION, type WorkflowState } from "../src/state/workflow-state";

// `glyph verify`: replays every stream from its events in the database and compares the
// result with the stream's head (version, status) and with every snapshot stored for it.

export interface Mismatch {
  stream_id: string;
  /** The version at which the stored and the replayed disagree (0 for the head as a whole). */
  version: number;
  what: string;
}

export interface VerifyReport {
  streams: number;
  events: number;
  snapshots: number;
  mismatches: Mismatch[];
}

/** JSON with object keys sorted, so two values compare whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(
          Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : item,
  );
}

export async function verifyDatabase(
  pool: Pool,
  onProgress: (done: number, total: number) => void = () => {},
  only?: readonly string[],
): Promise<VerifyReport> {
  const ids = (
    only === undefined
      ? await pool.query("SELECT stream_id::text FROM workflow_streams ORDER BY stream_id")
      : await pool.query(
          "SELECT stream_id::text FROM workflow_streams WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id",
          [only],
        )
  ).rows as { stream_id: string }[];
  const heads = ids;
  const report: VerifyReport = { streams: heads.length, events: 0, snapshots: 0, mismatches: [] };
  onProgress(0, heads.length);
  for (const [index, { stream_id }] of heads.entries()) {
    const mismatch = (version: number, what: string) => report.mismatches.push({ stream_id, version, what });
    const { head, events, snapshots } = await readStream(pool, stream_id);
    if (head === undefined) {
      onProgress(index + 1, heads.length);
      continue;
    }
    report.events += events.length;
    report.snapshots += snapshots.size;
    let state: WorkflowState = emptyWorkflowState();
    let replayed = 0;
    for (const row of events) {
      const version = Number(row.version);
      if (version !== replayed + 1) {
        mismatch(version, `version ${version} follows version ${replayed}`);
        break;
      }
      const event = WorkflowEvent.safeParse(row.event);
      if (!event.success) {
        mismatch(version, `the stored event does not parse: ${event.error.issues[0]?.message ?? "invalid"}`);
        break;
      }
      try {
        state = applyEvent(state, event.data);
      } catch (error) {
        mismatch(
          version,
          `the reducer refuses the event: ${error instanceof Error ? error.message : String(error)}`,
        );
        break;
      }
      replayed = version;
      const snapshot = snapshots.get(version);
      if (snapshot !== undefined && snapshot.schema_version === STATE_SCHEMA_VERSION) {
        if (canonicalJson(snapshot.state) !== canonicalJson(state)) {
          mismatch(version, "the snapshot differs from the replayed state");
        }
      }
    }
    for (const version of snapshots.keys()) {
      if (version > replayed)
        mismatch(version, `a snapshot at version ${version}, beyond the last event replayed (${replayed})`);
    }
    if (Number(head.version) !== replayed)
      mismatch(0, `the head says version ${head.version}, the events end at ${replayed}`);
    if (head.status !== state.status)
      mismatch(0, `the head says status ${head.status}, the replay ${state.status}`);
    onProgress(index + 1, heads.length);
  }
  return report;
}

/** A stream's head, events and snapshots, read in one snapshot of the database (appends may be landing). */
async function readStream(pool: Pool, streamId: string) {
  const connection = await pool.connect();
  try {
    await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const head = (
      await connection.query(
        "SELECT version::int8::text AS version, status FROM workflow_streams WHERE stream_id = $1",
        [streamId],
      )
    ).rows[0] as { version: string; status: string } | undefined;
    const events = (
      await connection.query(
        "SELECT version::int8::text AS version, event FROM workflow_events WHERE stream_id = $1 ORDER BY workflow_events.version",
        [streamId],
      )
    ).rows as { version: string; event: unknown }[];
    const snapshotRows = (
      await connection.query(
        "SELECT version::int8::text AS version, schema_version, state FROM workflow_snapshots WHERE stream_id = $1",
        [streamId],
      )
    ).rows as { version: string; schema_version: number; state: unknown }[];
    await connection.query("COMMIT");
    return { head, events, snapshots: new Map(snapshotRows.map((row) => [Number(row.version), row])) };
  } catch (error) {
    await connection.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    connection.release();
  }
}

/**
 * `glyph verify` without DATABASE_URL: replays each stream from its events over the API
 * and compares with its head and with the state the service serves (which it builds from
 * its newest snapshot and the events after it). Snapshots themselves are not visible here.
 */
export async function verifyApi(
  client: GlyphClient,
  onProgress: (done: number, total: number) => void = () => {},
  only?: readonly string[],
): Promise<VerifyReport> {
  const ids: string[] = [];
  if (only !== undefined) ids.push(...only);
  else for await (const head of client.list({ limit: 1000 })) ids.push(head.stream_id);
  const report: VerifyReport = { streams: ids.length, events: 0, snapshots: 0, mismatches: [] };
  onProgress(0, ids.length);
  for (const [index, streamId] of ids.entries()) {
    const mismatch = (version: number, what: string) =>
      report.mismatches.push({ stream_id: streamId, version, what });
    const head = await client.head(streamId);
    let state: WorkflowState = emptyWorkflowState();
    let replayed = 0;
    for await (const stored of client.events(streamId, { limit: 1000 })) {
      if (stored.version > head.version) break;
      report.events++;
      if (stored.version !== replayed + 1) {
        mismatch(stored.version, `version ${stored.version} follows version ${replayed}`);
        break;
      }
      try {
        state = applyEvent(state, stored.event);
      } catch (error) {
        mismatch(
          stored.version,
          `the reducer refuses the event: ${error instanceof Error ? error.message : String(error)}`,
        );
        break;
      }
      replayed = stored.version;
    }
    if (head.version !== replayed)
      mismatch(0, `the head says version ${head.version}, the events end at ${replayed}`);
    if (head.status !== state.status)
      mismatch(0, `the head says status ${head.status}, the replay ${state.status}`);
    if (replayed === head.version && replayed > 0) {
      const served = await client.state(streamId, { at: replayed });
      if (canonicalJson(served.state) !== canonicalJson(state)) {
        mismatch(replayed, "the state the service serves differs from the replayed state");
      }
    }
    onProgress(index + 1, ids.length);
  }
  return report;
}
