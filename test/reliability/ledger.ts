import { isDeepStrictEqual } from "node:util";
import type { Pool } from "@neondatabase/serverless";
import { PgEventStore } from "../../src/events/postgres";
import { StateRebuilder } from "../../src/events/replay";
import { WorkflowEvent } from "../../src/events/types";
import { applyEvent } from "../../src/state/apply-event";
import { emptyWorkflowState, WorkflowState } from "../../src/state/workflow-state";
import type { Attempt } from "./support";

// The client-side ledger: every append any writer ever sent, with its event ids, and
// what became of it. `acked` (201/200: the server promised the events are stored at
// these versions), `rejected` (a definite refusal: 409, 422), or `unresolved` (only
// ambiguous failures: 503, a cut connection, no answer). Then the database is read
// directly and compared with the ledger, event by event.

export type Outcome = "pending" | "acked" | "rejected" | "unresolved";

export interface LedgerEntry {
  seq: number;
  writer: number;
  streamId: string;
  eventIds: string[];
  events: WorkflowEvent[];
  mode: string;
  attempts: number;
  /** Attempts whose effect the client could not know: 503, a cut or failed connection, no answer. */
  ambiguous: number;
  /** Times a definite 409 sent the writer back to try the same ids against a newer version. */
  replans: number;
  outcome: Outcome;
  versions?: number[];
  /** Status and problem code of the definite refusal. */
  refusal?: { status: number; code: string };
}

interface AppendAnswer {
  stream_id: string;
  version: number;
  versions: number[];
  event_ids: string[];
  idempotent: boolean;
}

/** How one attempt ended, from the writer's point of view. */
export type Settled =
  | { kind: "acked"; status: 200 | 201; versions: number[]; idempotent: boolean }
  | { kind: "rejected"; status: number; code: string; actual?: number }
  | { kind: "ambiguous"; why: string }
  | { kind: "unexpected"; why: string };

export class Ledger {
  readonly entries: LedgerEntry[] = [];
  /** Anything that broke a promise while the writers ran; the test fails on the first few. */
  readonly violations: string[] = [];
  readonly statuses = new Map<string, number>();

  open(writer: number, streamId: string, events: WorkflowEvent[], mode: string): LedgerEntry {
    const entry: LedgerEntry = {
      seq: this.entries.length,
      writer,
      streamId,
      eventIds: events.map(() => crypto.randomUUID()),
      events,
      mode,
      attempts: 0,
      ambiguous: 0,
      replans: 0,
      outcome: "pending",
    };
    this.entries.push(entry);
    return entry;
  }

  /** The request body of an entry (the same on every retry: same event ids, same events). */
  body(entry: LedgerEntry, expected?: number | "any" | "no_stream" | "stream_exists"): string {
    return JSON.stringify({
      ...(expected === undefined ? {} : { expected_version: expected }),
      events: entry.events.map((event, index) => ({ event_id: entry.eventIds[index], event })),
    });
  }

  violation(entry: LedgerEntry | undefined, message: string): void {
    const where = entry ? `append #${entry.seq} (writer ${entry.writer}, ${entry.mode}): ` : "";
    this.violations.push(`${where}${message}`);
  }

  /** Records one attempt's answer against the entry and says how it ended. */
  settle(entry: LedgerEntry, attempt: Attempt): Settled {
    entry.attempts++;
    if (attempt.kind === "failed") {
      this.count(attempt.reason.startsWith("cut") ? "cut by client" : "no answer");
      entry.ambiguous++;
      return { kind: "ambiguous", why: attempt.reason };
    }
    this.count(String(attempt.status));
    const json = (attempt.json ?? {}) as Record<string, unknown>;
    if (attempt.status === 503) {
      entry.ambiguous++;
      if (attempt.contentType !== "application/problem+json")
        this.violation(entry, `503 without a problem document: ${attempt.text.slice(0, 200)}`);
      return { kind: "ambiguous", why: "503" };
    }
    if (attempt.status === 200 || attempt.status === 201) {
      const body = json as unknown as AppendAnswer;
      const problems = checkAnswer(entry, body, attempt.status);
      if (problems) {
        this.violation(entry, `${attempt.status} ${problems}: ${attempt.text.slice(0, 300)}`);
        return { kind: "unexpected", why: problems };
      }
      if (entry.versions !== undefined && !isDeepStrictEqual(entry.versions, body.versions)) {
        this.violation(
          entry,
          `acknowledged twice with different versions: ${entry.versions.join(",")} then ${body.versions.join(",")}`,
        );
      }
      if (entry.outcome === "rejected") {
        this.violation(
          entry,
          `acknowledged (${attempt.status}) after a definite refusal ${entry.refusal?.status}`,
        );
      }
      entry.versions = body.versions;
      entry.outcome = "acked";
      return { kind: "acked", status: attempt.status, versions: body.versions, idempotent: body.idempotent };
    }
    if (attempt.status === 409 || attempt.status === 422) {
      const code = String(json.type ?? "").replace(/^urn:glyph-streams:problem:/, "");
      if (attempt.contentType !== "application/problem+json")
        this.violation(entry, `${attempt.status} without a problem document`);
      if (entry.outcome === "acked") {
        this.violation(entry, `refused with ${attempt.status} ${code} after it was acknowledged`);
      } else {
        entry.outcome = "rejected";
        entry.refusal = { status: attempt.status, code };
      }
      const actual = typeof json.actual === "number" ? json.actual : undefined;
      return { kind: "rejected", status: attempt.status, code, ...(actual === undefined ? {} : { actual }) };
    }
    this.violation(entry, `unexpected ${attempt.status}: ${attempt.text.slice(0, 300)}`);
    return { kind: "unexpected", why: `status ${attempt.status}` };
  }

  /**
   * After a definite 409 nothing of the append is stored, so its writer may send the
   * same event ids again against the version it now knows.
   */
  reopen(entry: LedgerEntry): void {
    if (entry.outcome !== "rejected")
      throw new Error(`append #${entry.seq} is ${entry.outcome}, not rejected`);
    entry.outcome = "pending";
    delete entry.refusal;
    entry.replans++;
  }

  count(key: string): void {
    this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
  }

  /** Entries that never got a definite answer are unresolved from here on. */
  close(): void {
    for (const entry of this.entries) if (entry.outcome === "pending") entry.outcome = "unresolved";
  }
}

function checkAnswer(entry: LedgerEntry, body: AppendAnswer, status: number): string | undefined {
  if (body.stream_id !== entry.streamId) return `names stream ${body.stream_id}`;
  if (!isDeepStrictEqual(body.event_ids, entry.eventIds)) return "names other event ids";
  if (!Array.isArray(body.versions) || body.versions.length !== entry.eventIds.length)
    return "has the wrong number of versions";
  const first = body.versions[0] ?? 0;
  if (!body.versions.every((version, index) => version === first + index) || first < 1)
    return "has versions that are not consecutive from 1 up";
  if (body.version !== body.versions[body.versions.length - 1])
    return "has a version that is not the last one";
  if (body.idempotent !== (status === 200)) return `says idempotent=${body.idempotent}`;
  return undefined;
}

export interface LedgerFigures {
  streams: number;
  appendsSent: number;
  attempts: number;
  ambiguousAttempts: number;
  /** Same event ids sent again against a newer version after a definite 409. */
  replans: number;
  acked: number;
  rejected: number;
  unresolved: number;
  /** Unresolved appends whose events were in fact stored (each exactly once, all or nothing). */
  unresolvedStored: number;
  eventsAcknowledged: number;
  eventsStored: number;
  /** Stored events compared with the ledger (id, stream, version, content). */
  eventsChecked: number;
  snapshotsChecked: number;
  lost: number;
  duplicated: number;
  /** Stored events no acknowledged or unresolved append sent. */
  unexpected: number;
  statuses: Record<string, number>;
}

interface Row {
  event_id: string;
  stream_id: string;
  version: number;
  event: unknown;
}

/**
 * Compares the ledger with the database, read directly: every acknowledged event
 * stored exactly once at its acknowledged version with its content, nothing refused
 * stored, unresolved appends stored all-or-nothing and at most once, versions 1..N
 * without a gap, nothing stored that no writer sent, every snapshot equal to a replay
 * of the events before it, and the state replayed from the log equal to what the
 * server serves (`servedState`) and to what StateRebuilder builds.
 */
export async function verifyLedger(
  pool: Pool,
  ledger: Ledger,
  streamIds: readonly string[],
  servedState: (streamId: string) => Promise<unknown>,
): Promise<{ problems: string[]; figures: LedgerFigures }> {
  ledger.close();
  const problems: string[] = [];
  const sentIds = ledger.entries.flatMap((entry) => entry.eventIds);
  const stored = new Map<string, Row[]>();
  for (let offset = 0; offset < sentIds.length; offset += 5000) {
    const result = await pool.query(
      `SELECT event_id::text AS event_id, stream_id::text AS stream_id, version::int AS version, event
         FROM workflow_events WHERE event_id = ANY($1::uuid[])`,
      [sentIds.slice(offset, offset + 5000)],
    );
    for (const row of result.rows as Row[])
      stored.set(row.event_id, [...(stored.get(row.event_id) ?? []), row]);
  }
  const streamRows = (
    await pool.query(
      `SELECT event_id::text AS event_id, stream_id::text AS stream_id, version::int AS version, event
         FROM workflow_events WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id, version`,
      [streamIds],
    )
  ).rows as Row[];
  const heads = new Map(
    (
      (
        await pool.query(
          "SELECT stream_id::text AS stream_id, version::int AS version FROM workflow_streams WHERE stream_id = ANY($1::uuid[])",
          [streamIds],
        )
      ).rows as Array<{ stream_id: string; version: number }>
    ).map((row) => [row.stream_id, row.version] as const),
  );

  let lost = 0;
  let duplicated = 0;
  let eventsChecked = 0;
  let unresolvedStored = 0;
  const expectedIds = new Set<string>();
  for (const entry of ledger.entries) {
    const rows = entry.eventIds.map((id) => stored.get(id) ?? []);
    for (const [index, found] of rows.entries()) {
      if (found.length > 1) {
        duplicated++;
        problems.push(
          `event ${entry.eventIds[index]} of append #${entry.seq} is stored ${found.length} times`,
        );
      }
    }
    const present = rows.filter((found) => found.length > 0).length;
    if (present !== 0 && present !== entry.eventIds.length) {
      problems.push(`append #${entry.seq} is stored in part: ${present} of ${entry.eventIds.length} events`);
    }
    if (entry.outcome === "acked") {
      for (const [index, found] of rows.entries()) {
        const row = found[0];
        const id = entry.eventIds[index] ?? "";
        expectedIds.add(id);
        if (row === undefined) {
          lost++;
          problems.push(
            `acknowledged event ${id} (append #${entry.seq}, version ${entry.versions?.[index]}) is lost`,
          );
          continue;
        }
        eventsChecked++;
        if (row.stream_id !== entry.streamId || row.version !== entry.versions?.[index]) {
          problems.push(
            `acknowledged event ${id} was promised at ${entry.streamId}@${entry.versions?.[index]} but is at ${row.stream_id}@${row.version}`,
          );
        }
        const sent = entry.events[index];
        if (!isDeepStrictEqual(WorkflowEvent.parse(row.event), WorkflowEvent.parse(sent))) {
          problems.push(
            `acknowledged event ${id} is stored with other content: ${JSON.stringify(row.event)}`,
          );
        }
      }
    } else if (entry.outcome === "rejected") {
      if (present > 0) {
        problems.push(
          `append #${entry.seq} was refused (${entry.refusal?.status} ${entry.refusal?.code}) yet ${present} of its events are stored`,
        );
      }
    } else if (present > 0) {
      unresolvedStored++;
      for (const id of entry.eventIds) expectedIds.add(id);
      const versions = rows.map((found) => found[0]?.version ?? 0);
      const first = versions[0] ?? 0;
      if (!versions.every((version, index) => version === first + index)) {
        problems.push(
          `unresolved append #${entry.seq} is stored at versions ${versions.join(",")}, not consecutive`,
        );
      }
    }
  }

  let unexpected = 0;
  let snapshotsChecked = 0;
  const byStream = new Map<string, Row[]>();
  for (const row of streamRows) byStream.set(row.stream_id, [...(byStream.get(row.stream_id) ?? []), row]);
  for (const streamId of streamIds) {
    const rows = byStream.get(streamId) ?? [];
    const head = heads.get(streamId) ?? 0;
    const versions = rows.map((row) => row.version);
    if (
      !isDeepStrictEqual(
        versions,
        Array.from({ length: head }, (_, index) => index + 1),
      )
    ) {
      problems.push(`stream ${streamId} (head ${head}) does not hold versions 1..${head}: ${gaps(versions)}`);
    }
    for (const row of rows) {
      if (!expectedIds.has(row.event_id)) {
        unexpected++;
        problems.push(
          `stream ${streamId} holds event ${row.event_id} at ${row.version}, which no writer had acknowledged`,
        );
      }
    }
    let state = emptyWorkflowState();
    const prefixes = new Map<number, WorkflowState>();
    try {
      for (const row of rows) {
        state = applyEvent(state, WorkflowEvent.parse(row.event));
        prefixes.set(state.version, state);
      }
    } catch (error) {
      problems.push(`stream ${streamId} does not replay: ${error instanceof Error ? error.message : error}`);
    }
    const served = (await servedState(streamId)) as { version?: number; state?: unknown } | undefined;
    if (!isDeepStrictEqual(served?.state, JSON.parse(JSON.stringify(state)))) {
      problems.push(
        `stream ${streamId}: GET /state (version ${served?.version}) differs from the replayed log (version ${state.version})`,
      );
    }
    const rebuilt = await new StateRebuilder(new PgEventStore(pool)).rebuildState(streamId);
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(rebuilt.state)), JSON.parse(JSON.stringify(state)))) {
      problems.push(
        `stream ${streamId}: StateRebuilder (from snapshot ${rebuilt.snapshotVersion}) differs from the replay`,
      );
    }
    if (rebuilt.skippedSnapshots.length > 0) {
      problems.push(`stream ${streamId}: ${rebuilt.skippedSnapshots.length} snapshots were unusable`);
    }
    const snapshots = (
      await pool.query(
        "SELECT version::int AS version, state FROM workflow_snapshots WHERE stream_id = $1 ORDER BY version",
        [streamId],
      )
    ).rows as Array<{ version: number; state: unknown }>;
    for (const snapshot of snapshots) {
      const expected = prefixes.get(snapshot.version);
      const parsed = WorkflowState.safeParse(snapshot.state);
      if (
        !parsed.success ||
        expected === undefined ||
        !isDeepStrictEqual(JSON.parse(JSON.stringify(parsed.data)), JSON.parse(JSON.stringify(expected)))
      ) {
        problems.push(
          `stream ${streamId}: the snapshot at ${snapshot.version} differs from the replay to that version`,
        );
      }
    }
    snapshotsChecked += snapshots.length;
  }

  const entries = ledger.entries;
  const figures: LedgerFigures = {
    streams: streamIds.length,
    appendsSent: entries.length,
    attempts: entries.reduce((sum, entry) => sum + entry.attempts, 0),
    ambiguousAttempts: entries.reduce((sum, entry) => sum + entry.ambiguous, 0),
    replans: entries.reduce((sum, entry) => sum + entry.replans, 0),
    acked: entries.filter((entry) => entry.outcome === "acked").length,
    rejected: entries.filter((entry) => entry.outcome === "rejected").length,
    unresolved: entries.filter((entry) => entry.outcome === "unresolved").length,
    unresolvedStored,
    eventsAcknowledged: entries
      .filter((entry) => entry.outcome === "acked")
      .reduce((sum, entry) => sum + entry.eventIds.length, 0),
    eventsStored: streamRows.length,
    eventsChecked,
    snapshotsChecked,
    lost,
    duplicated,
    unexpected,
    statuses: Object.fromEntries([...ledger.statuses.entries()].sort()),
  };
  return { problems, figures };
}

/** A short description of where a version list departs from 1..N. */
function gaps(versions: readonly number[]): string {
  const at = versions.findIndex((version, index) => version !== index + 1);
  return at === -1 ? `it ends at ${versions.length}` : `position ${at + 1} holds ${versions[at]}`;
}
