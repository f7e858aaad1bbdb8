import { randomBytes, randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { neonConfig } from "@neondatabase/serverless";
import { startLocalWorker } from "../../scripts/local/worker";
import { openHttpClient } from "../../src/db/http-client";
import { PgEventStore } from "../../src/events/postgres";
import type { NewEvent } from "../../src/events/store";
import type { WorkflowEvent } from "../../src/events/types";
import { applyEvent } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import { benchAuthorization } from "../lib/auth";
import { startCpuMeter } from "../lib/cpu";
import { httpRequest, serverTiming } from "../lib/http-client";
import type { BenchPlan } from "../lib/plan";
import { type Stack, startTrivialWorker } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import {
  appendBody,
  BENCH_STREAM_TYPE,
  contextEvent,
  createdStreams,
  createStream,
  getState,
  postAppend,
} from "../lib/workflow-events";

// 1. One writer, one event per append, one append at a time. Beside the whole stack
// (HTTP → Worker → actor → database) the same append is timed without the Worker, on
// the product's driver through the same bridge, from this Node process:
//   direct INSERT            one INSERT statement (its own transaction: autocommit),
//                            one row into a scratch copy of workflow_events — the baseline;
//   BEGIN / INSERT / COMMIT  the same row in an explicit transaction (three round trips);
//   PgEventStore.append      the product's store with the actor's arguments (exact version +
//                            state after): the very statement the actor runs, from Node;
//                            and the same sent as the actor sends it, one HTTP request
//                            (neon()) to the /sql endpoint, from Node.
// and, to see where the stack's time goes, requests that stop earlier:
//   runtime only             a Worker that only answers "ok", in the same local runtime;
//   Worker only              GET of a path nothing serves, with a token: HTTP, Hono, auth, 404;
//   Worker + actor           GET /streams/:id/state of a warm stream: answered from the
//                            actor's cache, no database;
//   SELECT $1                one round trip through driver and bridge, with the driver's
//                            default coalesceWrites (writes wait for a setTimeout(0)) and without.
// The same append and trivial Worker also run as `npm start` runs them, in wrangler's dev
// environment (its Worker socket, and its dev proxy), to show what that costs.
// Paths take turns in rounds so that drift in the machine's load touches all alike.

export type LatencyPathId =
  | "stack"
  | "stack-dev"
  | "stack-dev-proxy"
  | "runtime-only"
  | "runtime-only-dev"
  | "worker-only"
  | "worker-actor"
  | "direct-insert"
  | "begin-insert-commit"
  | "store-append"
  | "store-append-http"
  | "select"
  | "select-no-coalesce";

const MAX_FAILURES = 3;

export interface LatencyPath {
  id: LatencyPathId;
  label: string;
  summary: Summary;
  /** workerd CPU per request (ms), requests one at a time. */
  workerdCpuMs: number;
}

export interface AppendLatencyResult {
  samplesPerPath: number;
  paths: LatencyPath[];
  /** Server-Timing of the stack path (whole ms, workerd's clock). */
  serverTiming: { workerTotal: Summary; actorTotal: Summary; actorQueue: Summary; database: Summary };
  failures: string[];
}

export async function appendLatency(stack: Stack, plan: BenchPlan["latency"]): Promise<AppendLatencyResult> {
  const scratch = `bench_scratch_events_${randomBytes(4).toString("hex")}`;
  await stack.pool.query(
    `CREATE TABLE ${scratch} (LIKE workflow_events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES)`,
  );
  const started: Array<{ stop(): Promise<void> }> = [];
  const keep = <T extends { stop(): Promise<void> }>(worker: T): T => {
    started.push(worker);
    return worker;
  };
  try {
    const trivial = keep(await startTrivialWorker());
    const trivialDev = keep(await startTrivialWorker({ runtime: "wrangler-dev" }));
    // The product as `npm start` runs it: its Worker socket, and wrangler's dev proxy.
    const dev = keep(await startLocalWorker({ vars: stack.workerVars }));
    return await measure(stack, plan, scratch, {
      trivial: trivial.url,
      trivialDev: trivialDev.url,
      dev: dev.url,
      devProxy: dev.proxyUrl,
    });
  } finally {
    for (const worker of started) await worker.stop().catch(() => undefined);
    await stack.pool.query(`DROP TABLE IF EXISTS ${scratch}`).catch(() => undefined);
  }
}

async function measure(
  stack: Stack,
  plan: BenchPlan["latency"],
  scratch: string,
  /** The trivial Worker (both runtimes), and the product's Worker in wrangler's dev environment. */
  urls: { trivial: URL; trivialDev: URL; dev: URL; devProxy: URL },
): Promise<AppendLatencyResult> {
  const failures: string[] = [];
  const timings: Array<Record<string, number>> = [];

  // The stack: the benchmark's runtime, and npm start's (its Worker socket and its dev proxy).
  const viaStack = async (base: URL, streamId: string, value: number, record: boolean) => {
    const response = await postAppend(base, streamId, appendBody([contextEvent("latency", value)]));
    if (response.status !== 201) {
      if (failures.length < 5)
        failures.push(`append answered ${response.status}: ${response.body.slice(0, 200)}`);
      return undefined;
    }
    if (record) timings.push(serverTiming(response.headers["server-timing"]));
    return response.receivedAt - response.sentAt;
  };
  const stackStream = await createStream(stack.worker.url);
  const devStream = await createStream(urls.dev);
  const proxyStream = await createStream(urls.devProxy);

  // The baseline: one row, one INSERT, same driver and bridge.
  const scratchStream = randomUUID();
  let scratchVersion = 0;
  const insertSql = `INSERT INTO ${scratch} (event_id, stream_id, stream_type, version, event_type, event, metadata)
                     VALUES ($1, $2, 'workflow', $3, 'context_updated', $4::jsonb, '{}'::jsonb)`;
  const insertArgs = () => {
    scratchVersion++;
    const event = {
      type: "context_updated",
      key: "latency",
      value: scratchVersion,
      updated_at: new Date().toISOString(),
    };
    return [randomUUID(), scratchStream, scratchVersion, JSON.stringify(event)];
  };
  const directInsert = async () => {
    const started = performance.now();
    await stack.pool.query(insertSql, insertArgs());
    return performance.now() - started;
  };
  const client = await stack.pool.connect();
  const transaction = async () => {
    const started = performance.now();
    await client.query("BEGIN");
    await client.query(insertSql, insertArgs());
    await client.query("COMMIT");
    return performance.now() - started;
  };

  // The actor's statement, run from Node: over the bridge, and over HTTP as the actor sends it.
  const now = () => new Date().toISOString();
  const storeWriter = async (store: PgEventStore) => {
    const streamId = randomUUID();
    createdStreams.add(streamId);
    let state = emptyWorkflowState();
    const storeAppend = async (event: WorkflowEvent) => {
      const next = applyEvent(state, event);
      const events: NewEvent[] = [{ event, event_id: randomUUID() }];
      const started = performance.now();
      await store.append({
        streamId,
        expectedVersion: state.version,
        events,
        ...(state.version === 0 ? { streamType: BENCH_STREAM_TYPE } : {}),
        stateAfter: next,
      });
      const elapsed = performance.now() - started;
      state = next;
      return elapsed;
    };
    await storeAppend({
      type: "workflow_started",
      workflow_id: randomUUID(),
      config_version: "bench",
      started_at: now(),
    });
    let value = 0;
    return () => storeAppend({ type: "context_updated", key: "latency", value: ++value, updated_at: now() });
  };
  const storeContext = await storeWriter(new PgEventStore(stack.pool));
  const storeContextHttp = await storeWriter(
    new PgEventStore(openHttpClient(stack.settings, { timeoutMs: 10_000 })),
  );

  // Shorter paths through the Worker.
  const timedGet = async (
    url: () => Promise<{ status: number; sentAt: number; receivedAt: number; body: string }>,
    expected: number,
  ) => {
    const response = await url();
    if (response.status !== expected) {
      if (failures.length < 5)
        failures.push(`GET answered ${response.status}: ${response.body.slice(0, 200)}`);
      return undefined;
    }
    return response.receivedAt - response.sentAt;
  };
  const nowhere = new URL("/bench-nothing-is-served-here", stack.worker.url);
  const runtimeOnly = (url: URL) => timedGet(() => httpRequest("GET", url, {}), 200);
  const workerOnly = () => timedGet(() => httpRequest("GET", nowhere, { ...benchAuthorization }), 404);
  const workerActor = () => timedGet(() => getState(stack.worker.url, stackStream), 200);

  // One round trip through driver and bridge; neonConfig is process-wide, so restored at once.
  const select = async (coalesce: boolean) => {
    const previous = neonConfig.coalesceWrites;
    neonConfig.coalesceWrites = coalesce;
    try {
      const started = performance.now();
      await client.query("SELECT $1::int AS n", [1]);
      return performance.now() - started;
    } finally {
      neonConfig.coalesceWrites = previous;
    }
  };

  let stackValue = 0;
  let devValue = 0;
  let proxyValue = 0;
  const paths: Array<{
    id: LatencyPathId;
    label: string;
    run: (record: boolean) => Promise<number | undefined>;
  }> = [
    {
      id: "stack",
      label: "append, whole stack: HTTP → Worker → actor → database",
      run: (record) => viaStack(stack.worker.url, stackStream, ++stackValue, record),
    },
    {
      id: "stack-dev",
      label: "the same append in wrangler's dev environment (npm start's runtime), its Worker socket",
      run: () => viaStack(urls.dev, devStream, ++devValue, false),
    },
    {
      id: "stack-dev-proxy",
      label: "the same behind wrangler's dev proxy (as `npm start` serves it)",
      run: () => viaStack(urls.devProxy, proxyStream, ++proxyValue, false),
    },
    {
      id: "runtime-only",
      label: 'runtime only: a trivial Worker answering "ok", run the same way',
      run: () => runtimeOnly(urls.trivial),
    },
    {
      id: "runtime-only-dev",
      label: "the trivial Worker in wrangler's dev environment, its Worker socket",
      run: () => runtimeOnly(urls.trivialDev),
    },
    {
      id: "worker-only",
      label: "Worker only: authenticated GET answered 404 (no actor, no database)",
      run: workerOnly,
    },
    {
      id: "worker-actor",
      label: "Worker + actor: GET /state of a warm stream (actor's cache, no database)",
      run: workerActor,
    },
    {
      id: "direct-insert",
      label: "baseline: one INSERT (autocommit), Node → bridge → database",
      run: directInsert,
    },
    {
      id: "begin-insert-commit",
      label: "BEGIN / INSERT / COMMIT, Node → bridge → database",
      run: transaction,
    },
    {
      id: "store-append",
      label: "PgEventStore.append (the actor's statement), Node → bridge → database",
      run: storeContext,
    },
    {
      id: "store-append-http",
      label: "the same statement sent as the actor sends it: Node → HTTP (neon()) → /sql endpoint → database",
      run: storeContextHttp,
    },
    {
      id: "select",
      label: "SELECT $1, Node → bridge → database (driver default: coalesceWrites on)",
      run: () => select(true),
    },
    { id: "select-no-coalesce", label: "SELECT $1 with coalesceWrites off", run: () => select(false) },
  ];
  const samples = new Map<LatencyPath["id"], number[]>(paths.map((path) => [path.id, []]));
  const workerdSeconds = new Map<LatencyPath["id"], number>();
  // A path that keeps failing is dropped after MAX_FAILURES, so that a broken path (or a
  // timeout per request) cannot hold the run for samples × timeout.
  const failed = new Map<LatencyPathId, number>();
  const attempt = async (path: (typeof paths)[number], record: boolean) => {
    if ((failed.get(path.id) ?? 0) >= MAX_FAILURES) return undefined;
    try {
      const elapsed = await path.run(record);
      if (elapsed === undefined) failed.set(path.id, (failed.get(path.id) ?? 0) + 1);
      return elapsed;
    } catch (error) {
      failed.set(path.id, (failed.get(path.id) ?? 0) + 1);
      if (failures.length < 5)
        failures.push(`${path.id}: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  };
  try {
    for (const path of paths) for (let i = 0; i < plan.warmup; i++) await attempt(path, false);
    for (let round = 0; round < plan.rounds; round++) {
      for (const path of paths) {
        const into = samples.get(path.id) ?? [];
        const meter = startCpuMeter();
        for (let i = 0; i < plan.perRound; i++) {
          const elapsed = await attempt(path, true);
          if (elapsed !== undefined) into.push(elapsed);
        }
        const cpu = meter.stop();
        workerdSeconds.set(path.id, (workerdSeconds.get(path.id) ?? 0) + (cpu.seconds.workerd ?? 0));
      }
    }
  } finally {
    client.release();
  }
  const pick = (name: string) =>
    summarize(timings.map((timing) => timing[name] ?? Number.NaN).filter(Number.isFinite));
  return {
    samplesPerPath: plan.rounds * plan.perRound,
    paths: paths.map((path) => ({
      id: path.id,
      label: path.label,
      summary: summarize(samples.get(path.id) ?? []),
      workerdCpuMs:
        ((workerdSeconds.get(path.id) ?? 0) * 1000) / Math.max(1, samples.get(path.id)?.length ?? 0),
    })),
    serverTiming: {
      workerTotal: pick("total"),
      actorTotal: pick("actor"),
      actorQueue: pick("queue"),
      database: pick("db"),
    },
    failures,
  };
}
