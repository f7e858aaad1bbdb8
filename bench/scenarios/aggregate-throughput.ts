import { inParallel, runClosedLoop, sleep } from "../lib/closed-loop";
import { closeConnections } from "../lib/http-client";
import { BENCH_ENDPOINT_IDLE_MS, type BenchPlan } from "../lib/plan";
import type { Stack } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import { commitCounts, createStream, streamVersions } from "../lib/workflow-events";
import { appendCompletion, contextBatch } from "./stream-throughput";

// 3. Many streams at once: 64 streams (so 64 actors, each with its own database
// connection), with 1 or 4 writers per stream, single events or batches of 50. The same
// 64 streams serve every configuration, so that the run never holds more than 64 actor
// connections (PostgreSQL's default max_connections is 100, shared with everyone else);
// each configuration counts only the events written after its start.

export interface AggregateRow {
  streams: number;
  writersPerStream: number;
  eventsPerAppend: number;
  eventsPerSecond: number;
  perStreamEventsPerSecond: number;
  appendsPerSecond: number;
  latency: Summary;
  eventsPerTransaction: number;
  failed: number;
  failures: string[];
}

export interface AggregateThroughputResult {
  windowMs: number;
  warmupMs: number;
  rows: AggregateRow[];
}

export async function aggregateThroughput(
  stack: Stack,
  plan: BenchPlan["aggregate"],
  log: (line: string) => void,
): Promise<AggregateThroughputResult> {
  const rows: AggregateRow[] = [];
  // The /sql endpoint closes earlier scenarios' connections once idle for BENCH_ENDPOINT_IDLE_MS.
  await sleep(BENCH_ENDPOINT_IDLE_MS + 1_000);
  closeConnections();
  const base = stack.worker.url;
  const streams = await inParallel(
    Array.from({ length: plan.streams }, (_, index) => index),
    16,
    () => createStream(base),
  );
  for (const config of plan.configs) {
    closeConnections();
    const before = await streamVersions(stack.pool, streams);
    const writers = plan.streams * config.writersPerStream;
    const result = await runClosedLoop({
      writers,
      warmupMs: plan.warmupMs,
      durationMs: plan.durationMs,
      maxRequestsPerWriter: plan.maxRequestsPerWriter,
      send: (writer, sequence) =>
        appendCompletion(
          base,
          streams[writer % streams.length] ?? "",
          contextBatch(writer, sequence, config.batchSize),
        ),
    });
    const commits = await commitCounts(stack.pool, streams, before);
    const row: AggregateRow = {
      streams: plan.streams,
      writersPerStream: config.writersPerStream,
      eventsPerAppend: config.batchSize,
      eventsPerSecond: result.unitsPerSecond,
      perStreamEventsPerSecond: result.unitsPerSecond / plan.streams,
      appendsPerSecond: result.requestsPerSecond,
      latency: summarize(result.latencies),
      eventsPerTransaction: commits.transactions === 0 ? Number.NaN : commits.events / commits.transactions,
      failed: result.failedRequests,
      failures: result.failures,
    };
    rows.push(row);
    log(
      `  ${plan.streams} streams × ${config.writersPerStream} writer(s) × ${config.batchSize} event(s): ` +
        `${row.eventsPerSecond.toFixed(0)} events/s, p50 ${row.latency.p50.toFixed(1)} ms` +
        (row.failed > 0 ? `, ${row.failed} failed` : ""),
    );
  }
  closeConnections();
  return { windowMs: plan.durationMs, warmupMs: plan.warmupMs, rows };
}
