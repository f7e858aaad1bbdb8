import { performance } from "node:perf_hooks";
import { isDeepStrictEqual } from "node:util";
import { closeConnections } from "../lib/http-client";
import type { BenchPlan } from "../lib/plan";
import type { Stack } from "../lib/stack";
import { median } from "../lib/stats";
import { type BulkStream, getState, loadStream } from "../lib/workflow-events";

// 4. Cold start: the first request to a stream's actor, which has to open its database
// connection and rebuild the state (newest snapshot + the events after it, or every
// event when the stream has no snapshot). Streams are written straight into the tables
// (generate_series), with the snapshot the store would have written at the newest
// multiple of 50, or none ("snapshots disabled": the same as deleting that stream's
// rows from workflow_snapshots). Each measurement uses a stream this Worker has never
// touched, so its actor does not exist yet; a second GET shows the warm cost. A few
// more are measured on a freshly started Worker (new workerd process: isolate start-up
// on top).

export interface ColdStartRow {
  events: number;
  snapshot: boolean;
  /** Events the rebuild applies on top of the snapshot (all of them without one). */
  replayed: number;
  /** First GET /state of each repetition (ms). */
  firstMs: number[];
  warmMs: number[];
  /** Rebuilt states that differed from the reducer's state computed in Node. */
  mismatches: number;
  failures: string[];
}

export interface FreshWorkerRow {
  events: number;
  restartMs: number;
  firstMs: number;
  ok: boolean;
}

export interface ColdStartResult {
  rows: ColdStartRow[];
  freshWorker: FreshWorkerRow[];
  loadSeconds: number;
  loadedEvents: number;
}

export async function coldStart(
  stack: Stack,
  plan: BenchPlan["coldStart"],
  log: (line: string) => void,
): Promise<ColdStartResult> {
  const loadStarted = performance.now();
  let loadedEvents = 0;
  const cases: Array<{ row: ColdStartRow; streams: BulkStream[] }> = [];
  for (const events of plan.sizes) {
    for (const snapshot of [true, false]) {
      const streams: BulkStream[] = [];
      for (let rep = 0; rep < plan.repetitions; rep++) {
        streams.push(await loadStream(stack.pool, events, snapshot));
        loadedEvents += events;
      }
      const replayed = snapshot ? events - Math.floor(events / 50) * 50 : events;
      cases.push({
        row: { events, snapshot, replayed, firstMs: [], warmMs: [], mismatches: 0, failures: [] },
        streams,
      });
    }
  }
  const freshStreams: BulkStream[] = [];
  for (const events of plan.freshWorkerSizes) {
    freshStreams.push(await loadStream(stack.pool, events, true));
    loadedEvents += events;
  }
  // One throwaway stream first: the first actor created after other work pays extra
  // (code paths not yet compiled), which would otherwise land on whichever case comes first.
  const warmup = await loadStream(stack.pool, 100, true);
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  log(`  loaded ${loadedEvents} events in ${loadSeconds.toFixed(1)} s`);
  await stack.pool.query("ANALYZE workflow_events");
  await stack.pool.query("ANALYZE workflow_snapshots");

  await getState(stack.worker.url, warmup.streamId);
  // Repetitions outermost, so that each size is measured at several moments.
  const deadline = performance.now() + plan.budgetMs;
  for (let rep = 0; rep < plan.repetitions; rep++) {
    for (const { row, streams } of cases) {
      const stream = streams[rep];
      if (stream === undefined) continue;
      if (performance.now() > deadline) {
        if (row.failures.length < 3) row.failures.push(`time budget (${plan.budgetMs / 1000} s) reached`);
        continue;
      }
      const first = await getState(stack.worker.url, stream.streamId);
      if (first.status !== 200) {
        if (row.failures.length < 3) row.failures.push(`HTTP ${first.status}: ${first.body.slice(0, 200)}`);
        continue;
      }
      row.firstMs.push(first.receivedAt - first.sentAt);
      const served = (JSON.parse(first.body) as { state?: unknown }).state;
      if (!isDeepStrictEqual(served, stream.state)) row.mismatches++;
      const warm = await getState(stack.worker.url, stream.streamId);
      if (warm.status === 200) row.warmMs.push(warm.receivedAt - warm.sentAt);
    }
  }
  for (const { row } of cases) {
    log(
      `  ${row.events} events, ${row.snapshot ? "with" : "without"} snapshot: first GET median ` +
        `${median(row.firstMs).toFixed(1)} ms, warm ${median(row.warmMs).toFixed(1)} ms` +
        (row.failures.length > 0 ? `, failures: ${row.failures.join("; ")}` : ""),
    );
  }

  const freshWorker: FreshWorkerRow[] = [];
  for (const stream of freshStreams) {
    if (performance.now() > deadline) break;
    closeConnections();
    const restartStarted = performance.now();
    await stack.restartWorker();
    const restartMs = performance.now() - restartStarted;
    const first = await getState(stack.worker.url, stream.streamId);
    const served = first.status === 200 ? (JSON.parse(first.body) as { state?: unknown }).state : undefined;
    freshWorker.push({
      events: stream.events,
      restartMs,
      firstMs: first.receivedAt - first.sentAt,
      ok: first.status === 200 && isDeepStrictEqual(served, stream.state),
    });
    log(
      `  fresh Worker, ${stream.events} events with snapshot: first GET ${(first.receivedAt - first.sentAt).toFixed(1)} ms`,
    );
  }
  closeConnections();
  return { rows: cases.map(({ row }) => row), freshWorker, loadSeconds, loadedEvents };
}
