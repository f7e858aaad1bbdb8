import { benchAuthorization } from "../lib/auth";
import type { Completion } from "../lib/closed-loop";
import { runClosedLoop } from "../lib/closed-loop";
import { type CpuReport, startCpuMeter } from "../lib/cpu";
import { closeConnections, httpRequest, serverTiming } from "../lib/http-client";
import type { BenchPlan } from "../lib/plan";
import { type RunningWorker, type Stack, startTrivialWorker } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import {
  appendBody,
  commitCounts,
  contextEvent,
  createStream,
  getState,
  postAppend,
  startedEvent,
  type WireEvent,
} from "../lib/workflow-events";

// 2. One stream, N concurrent writers, each appending (one event, or a batch of 50)
// as fast as its answers come back. The actor groups whatever is queued into one
// transaction; the group-commit factor (events per transaction) is read back from
// the database (distinct xmin of the stream's rows).
//
// For reference, the same closed loop with 64 writers on requests that never reach the
// database shows what the Worker and the actor alone can serve: an authenticated GET
// nothing serves (404), GET /state of a warm stream (the actor's cache), and an append
// the reducer refuses (a second workflow_started: HTTP, validation, RPC, the actor's
// checks; answered 422 before any query).

export interface ThroughputRow {
  writers: number;
  eventsPerAppend: number;
  eventsPerSecond: number;
  appendsPerSecond: number;
  latency: Summary;
  /** Events per transaction over the whole run (warm-up included). */
  eventsPerTransaction: number;
  appendsPerTransaction: number;
  /** Mean of the actor's Server-Timing db;dur over answered appends (ms). */
  meanDatabaseMs: number;
  meanQueueMs: number;
  failed: number;
  failures: string[];
  hitCountBound: boolean;
  /** Appends sent in all, warm-up and drain included (what the CPU figures cover). */
  requests: number;
  cpu: CpuReport;
}

export interface ReferenceRow {
  label: string;
  writers: number;
  requestsPerSecond: number;
  latency: Summary;
  requests: number;
  cpu: CpuReport;
  failed: number;
  failures: string[];
}

export interface StreamThroughputResult {
  windowMs: number;
  warmupMs: number;
  rows: ThroughputRow[];
  reference: ReferenceRow[];
}

/** Sends one append and reports it as a completion. */
export async function appendCompletion(
  base: URL,
  streamId: string,
  events: readonly WireEvent[],
): Promise<Completion> {
  const response = await postAppend(base, streamId, appendBody(events));
  const ok = response.status === 201;
  return {
    ok,
    units: ok ? events.length : 0,
    sentAt: response.sentAt,
    receivedAt: response.receivedAt,
    timing: serverTiming(response.headers["server-timing"]),
    ...(ok ? {} : { failure: `HTTP ${response.status}: ${response.body.slice(0, 200)}` }),
  };
}

export function contextBatch(writer: number, sequence: number, size: number): WireEvent[] {
  return Array.from({ length: size }, (_, index) => contextEvent(`w${writer % 16}`, sequence * size + index));
}

export async function streamThroughput(
  stack: Stack,
  plan: BenchPlan["throughput"],
  log: (line: string) => void,
): Promise<StreamThroughputResult> {
  const rows: ThroughputRow[] = [];
  const cases = [
    ...plan.writers.map((writers) => ({ writers, size: 1 })),
    ...plan.batchWriters.map((writers) => ({ writers, size: plan.batchSize })),
  ];
  for (const { writers, size } of cases) {
    closeConnections();
    const base = stack.worker.url;
    const streamId = await createStream(base);
    const meter = startCpuMeter();
    const result = await runClosedLoop({
      writers,
      warmupMs: plan.warmupMs,
      durationMs: plan.durationMs,
      maxRequestsPerWriter: plan.maxRequestsPerWriter,
      send: (writer, sequence) => appendCompletion(base, streamId, contextBatch(writer, sequence, size)),
    });
    const cpu = meter.stop();
    const commits = await commitCounts(stack.pool, [streamId]);
    const mean = (name: string) => {
      const values = result.timings.map((timing) => timing[name]).filter((value) => value !== undefined);
      return values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
    };
    const row: ThroughputRow = {
      writers,
      eventsPerAppend: size,
      eventsPerSecond: result.unitsPerSecond,
      appendsPerSecond: result.requestsPerSecond,
      latency: summarize(result.latencies),
      eventsPerTransaction: commits.transactions === 0 ? Number.NaN : commits.events / commits.transactions,
      appendsPerTransaction:
        commits.transactions === 0 ? Number.NaN : commits.events / size / commits.transactions,
      meanDatabaseMs: mean("db"),
      meanQueueMs: mean("queue"),
      failed: result.failedRequests,
      failures: result.failures,
      hitCountBound: result.hitCountBound,
      requests: result.sent,
      cpu,
    };
    rows.push(row);
    log(
      `  ${writers} writer(s) × ${size} event(s): ${row.eventsPerSecond.toFixed(0)} events/s, ` +
        `p50 ${row.latency.p50.toFixed(1)} ms, ${row.eventsPerTransaction.toFixed(1)} events/transaction` +
        (row.failed > 0 ? `, ${row.failed} failed` : ""),
    );
  }
  const reference = await referenceRows(stack, plan, log);
  closeConnections();
  return { windowMs: plan.durationMs, warmupMs: plan.warmupMs, rows, reference };
}

const REFERENCE_WRITERS = 64;
/** The label's start of the reference row that runs the trivial Worker in wrangler's dev environment. */
export const TRIVIAL_IN_DEV_ENVIRONMENT = "the trivial Worker in wrangler's dev environment";

async function referenceRows(
  stack: Stack,
  plan: BenchPlan["throughput"],
  log: (line: string) => void,
): Promise<ReferenceRow[]> {
  const base = stack.worker.url;
  const streamId = await createStream(base);
  const nowhere = new URL("/bench-nothing-is-served-here", base);
  const refused = appendBody([startedEvent()]);
  const started: RunningWorker[] = [];
  const start = async (options: Parameters<typeof startTrivialWorker>[0]) => {
    const worker = await startTrivialWorker(options);
    started.push(worker);
    return worker;
  };
  const rows: ReferenceRow[] = [];
  try {
    const trivial = await start({});
    const trivialDev = await start({ runtime: "wrangler-dev" });
    const rateLimited = await start({ rateLimited: true });
    const cases: Array<{ label: string; expected: number; send: () => ReturnType<typeof httpRequest> }> = [
      {
        label: 'a trivial Worker answering "ok" (the local runtime alone)',
        expected: 200,
        send: () => httpRequest("GET", trivial.url, {}),
      },
      {
        label: `${TRIVIAL_IN_DEV_ENVIRONMENT} (npm start's runtime, and the one issue 11's numbers were taken in)`,
        expected: 200,
        send: () => httpRequest("GET", trivialDev.url, {}),
      },
      {
        label:
          "the trivial Worker calling a Rate Limiting binding once first (production's Worker makes this call per request; a local run does not)",
        expected: 200,
        send: () => httpRequest("GET", rateLimited.url, {}),
      },
      {
        label: "authenticated GET answered 404 (Worker only)",
        expected: 404,
        send: () => httpRequest("GET", nowhere, { ...benchAuthorization }),
      },
      {
        label: "GET /state of a warm stream (Worker + actor's cache)",
        expected: 200,
        send: () => getState(base, streamId),
      },
      {
        label: "append refused by the reducer, 422 (the append path without the database)",
        expected: 422,
        send: () => postAppend(base, streamId, refused),
      },
    ];
    for (const item of cases) {
      closeConnections();
      const meter = startCpuMeter();
      const result = await runClosedLoop({
        writers: REFERENCE_WRITERS,
        warmupMs: plan.warmupMs / 2,
        durationMs: plan.durationMs / 2,
        maxRequestsPerWriter: plan.maxRequestsPerWriter,
        send: async () => {
          const response = await item.send();
          const ok = response.status === item.expected;
          return {
            ok,
            units: ok ? 1 : 0,
            sentAt: response.sentAt,
            receivedAt: response.receivedAt,
            ...(ok ? {} : { failure: `HTTP ${response.status}: ${response.body.slice(0, 200)}` }),
          };
        },
      });
      const row: ReferenceRow = {
        label: item.label,
        writers: REFERENCE_WRITERS,
        requestsPerSecond: result.requestsPerSecond,
        latency: summarize(result.latencies),
        requests: result.sent,
        cpu: meter.stop(),
        failed: result.failedRequests,
        failures: result.failures,
      };
      rows.push(row);
      log(
        `  reference, ${item.label}: ${row.requestsPerSecond.toFixed(0)} requests/s, p50 ${row.latency.p50.toFixed(1)} ms`,
      );
    }
  } finally {
    for (const worker of started) await worker.stop().catch(() => undefined);
  }
  return rows;
}
