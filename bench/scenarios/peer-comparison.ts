import { randomUUID } from "node:crypto";
import ws from "ws";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { benchAuthorization } from "../lib/auth";
import { type Completion, inParallel, runClosedLoop, sleep } from "../lib/closed-loop";
import { type CpuReport, startCpuMeter } from "../lib/cpu";
import {
  type ActivityCounter,
  activityCounter,
  benchConnectionUrl,
  connectionsNow,
  STATS_SETTLE_MS,
  sampleConnections,
} from "../lib/database-activity";
import { closeConnections, type HttpResponse, httpRequest } from "../lib/http-client";
import { type RunningPeer, startPeer } from "../lib/peer";
import { BENCH_CONNECTIONS_WAIT_MS, type BenchPlan } from "../lib/plan";
import type { Stack } from "../lib/stack";
import { type Summary, summarize } from "../lib/stats";
import {
  appendUrl,
  BENCH_STREAM_TYPE,
  contextEvent,
  createdStreams,
  getState,
  startedEvent,
  type WireEvent,
} from "../lib/workflow-events";

// 7. The peer in the same run: the scenarios of issue 11 against glyph-streams and against
// Emmett (bench/peer/emmett-server.ts, its own database on the same server), one after the
// other with the same load generator, HTTP client and closed loop, so that both see the
// same machine, the same database server and the same counts. Each case runs on both
// stores, the order alternating from case to case; streams are made through each store's
// own append route (500 events per append for the long ones).
//
// Per run: appends/s and latency (answered inside the window), refusals by status,
// writers that made progress, CPU of the service (glyph-streams: workerd + the bridge;
// the peer: its Node process) and of the PostgreSQL processes, statements per successful
// append (pg_stat_statements, when loaded), and the most server connections to the
// store's database at once (pg_stat_activity every 100 ms). Before each glyph-streams
// run the bench waits (at most GLYPH_IDLE_WAIT_MS) for the /sql endpoint to close the
// connections of earlier runs (idle for BENCH_ENDPOINT_IDLE_MS), so that those do not count.
//
// Then statements and transactions per append, measured on their own: one writer,
// `statementAppends` appends one after another (countPerAppend).

export type StoreName = "glyph" | "peer";

/**
 * What a case sends. "conditional": appends that carry `if` (a condition on the workflow
 * state, issue 11, item 4), which the peer emulates by reading, checking and appending
 * with the version it read (conditionalRequest).
 */
export type CaseKind =
  | "short"
  | "long"
  | "any"
  | "any-emmett-retry"
  | "exact-retry"
  | "streams"
  | "conditional";

export interface StoreRun {
  store: StoreName;
  appendsPerSecond: number;
  latency: Summary;
  okRequests: number;
  /** Refused or failed requests answered inside the window, by HTTP status (or "error"). */
  failedByKind: Record<string, number>;
  failures: string[];
  /** Writers with at least one append accepted inside the window. */
  writersProgressed: number;
  /** GET /state sent to learn the version after a 409 that did not carry `actual`. */
  stateReads: number;
  /** The stream's version before and after the run (single-stream cases). */
  streamVersions?: { before: number; after: number };
  /** Requests sent in all (warm-up and drain included): what the CPU covers. */
  requests: number;
  /** Appends accepted in all (warm-up and drain included): what statements are divided by. */
  acceptedInAll: number;
  cpu: CpuReport;
  /** Statements the store's database ran during the run (pg_stat_statements); undefined when not counted. */
  statements: number | undefined;
  peakConnections: number;
}

export interface PeerCase {
  id: string;
  kind: CaseKind;
  label: string;
  writers: number;
  streams: number;
  /** Events in the stream when the run starts (single-stream cases). */
  startEvents?: number;
  glyph?: StoreRun;
  peer?: StoreRun;
  /** Why the case was not run. */
  skipped?: string;
}

export interface PerAppendCounts {
  store: StoreName;
  appends: number;
  /** pg_stat_statements (exact), or undefined. */
  statements: number | undefined;
  /** pg_stat_database, after STATS_SETTLE_MS of quiet; undefined when statements are counted instead. */
  transactions: number | undefined;
  /** The peer only: statements its driver sent, counted in its process. */
  statementsInProcess?: number;
}

export interface PeerComparisonResult {
  windowMs: number;
  warmupMs: number;
  peerDatabase: string;
  glyphDatabase: string;
  statementsMethod: "pg_stat_statements" | "pg_stat_database";
  cases: PeerCase[];
  perAppend: PerAppendCounts[];
}

interface Target {
  store: StoreName;
  base: URL;
  database: string;
}

interface CaseSpec {
  id: string;
  kind: CaseKind;
  label: string;
  writers: number;
  streams: number;
  startEvents?: number;
  stores: StoreName[];
  skipped?: string;
}

const BATCH = 500;
const GLYPH_IDLE_WAIT_MS = BENCH_CONNECTIONS_WAIT_MS;

function cases(plan: BenchPlan["peer"]): CaseSpec[] {
  const both: StoreName[] = ["glyph", "peer"];
  const list: CaseSpec[] = [
    {
      id: "short",
      kind: "short",
      label: `1 writer, short streams (a new stream every ${plan.shortStreamEvents} events)`,
      writers: 1,
      streams: 1,
      stores: both,
    },
    ...plan.longStreams.map(
      (events): CaseSpec => ({
        id: `long-${events}`,
        kind: "long",
        label: `1 writer, a ${events.toLocaleString("en-US")}-event stream`,
        writers: 1,
        streams: 1,
        startEvents: events,
        stores: both,
      }),
    ),
    {
      id: "any",
      kind: "any",
      label: `${plan.writers} writers, one stream, expected_version any`,
      writers: plan.writers,
      streams: 1,
      startEvents: 1,
      stores: both,
    },
  ];
  if (plan.anyWithEmmettRetry) {
    list.push({
      id: "any-emmett-retry",
      kind: "any-emmett-retry",
      label: `${plan.writers} writers, one stream, any; the peer with Emmett's retry on version conflict`,
      writers: plan.writers,
      streams: 1,
      startEvents: 1,
      stores: ["peer"],
    });
  }
  list.push(
    {
      id: "exact-retry",
      kind: "exact-retry",
      label: `${plan.writers} writers, one stream, exact expected version, retry on 409`,
      writers: plan.writers,
      streams: 1,
      startEvents: 1,
      stores: both,
    },
    {
      id: "conditional",
      kind: "conditional",
      label: `${plan.writers} writers, one stream, "only if still at step X" (\`if\`), one in ${ADVANCE_EVERY} moves the workflow on`,
      writers: plan.writers,
      streams: 1,
      startEvents: 1,
      stores: both,
    },
    {
      id: "streams",
      kind: "streams",
      label: `${plan.streams} streams × 1 writer`,
      writers: plan.streams,
      streams: plan.streams,
      stores: both,
    },
  );
  // BENCH_PEER_CASES=exact-retry,conditional runs only those cases (the others are listed as not run).
  const only = process.env.BENCH_PEER_CASES?.split(",").map((id) => id.trim());
  if (!only?.length) return list;
  return list.map((spec) =>
    only.includes(spec.id) || spec.skipped !== undefined
      ? spec
      : { ...spec, skipped: "not selected (BENCH_PEER_CASES)" },
  );
}

export async function peerComparison(
  stack: Stack,
  plan: BenchPlan["peer"],
  log: (line: string) => void,
  options: { keepData: boolean },
): Promise<PeerComparisonResult> {
  const glyphDatabase = new URL(stack.settings.DATABASE_URL).pathname.slice(1);
  log("  starting the peer (Emmett) …");
  const peer = await startPeer(stack);
  // Statistics are read from a third database when there is one, so that the reads
  // themselves land in neither store's counts.
  const statsPool =
    glyphDatabase === "postgres"
      ? undefined
      : createPool(
          readDatabaseSettings({
            DATABASE_URL: benchConnectionUrl(stack.settings.DATABASE_URL, "stats", "postgres"),
            DATABASE_WS_PROXY: stack.settings.DATABASE_WS_PROXY ?? "",
          }),
          { max: 2, webSocketConstructor: ws, idleTimeoutMillis: 30_000 },
        );
  const pool = statsPool ?? stack.pool;
  try {
    await pool.query("SELECT 1");
    const counter = await activityCounter(pool, statsPool === undefined ? glyphDatabase : "postgres", [
      glyphDatabase,
      peer.database,
    ]);
    const targets: Record<StoreName, Target> = {
      glyph: { store: "glyph", base: stack.worker.url, database: glyphDatabase },
      peer: { store: "peer", base: peer.url, database: peer.database },
    };
    const context: RunContext = { stack, plan, counter, pool, glyphDatabase, peer };
    const results: PeerCase[] = [];
    let order = 0;
    for (const spec of cases(plan)) {
      const item: PeerCase = {
        id: spec.id,
        kind: spec.kind,
        label: spec.label,
        writers: spec.writers,
        streams: spec.streams,
        ...(spec.startEvents === undefined ? {} : { startEvents: spec.startEvents }),
        ...(spec.skipped === undefined ? {} : { skipped: spec.skipped }),
      };
      results.push(item);
      if (spec.skipped !== undefined) {
        log(`  ${spec.label}: not measured (${spec.skipped})`);
        continue;
      }
      const stores = order++ % 2 === 0 ? spec.stores : [...spec.stores].reverse();
      for (const store of stores) {
        const run = await runCase(spec, targets[store], context);
        item[store] = run;
        log(
          `  ${store === "glyph" ? "glyph-streams" : "peer (Emmett)"}, ${spec.label}: ${run.appendsPerSecond.toFixed(0)} appends/s, ` +
            `p50 ${run.latency.p50.toFixed(1)} ms, p99 ${run.latency.p99.toFixed(1)} ms` +
            describeFailures(run) +
            (spec.writers > 1 ? `, ${run.writersProgressed}/${spec.writers} writers progressed` : "") +
            (run.statements !== undefined && run.acceptedInAll > 0
              ? `, ${(run.statements / run.acceptedInAll).toFixed(1)} statements/append`
              : "") +
            `, peak ${run.peakConnections} connections`,
        );
      }
    }
    const perAppend = await countPerAppend(targets, context, log);
    closeConnections();
    return {
      windowMs: plan.durationMs,
      warmupMs: plan.warmupMs,
      peerDatabase: peer.database,
      glyphDatabase,
      statementsMethod: counter.statementsCounted ? "pg_stat_statements" : "pg_stat_database",
      cases: results,
      perAppend,
    };
  } finally {
    await peer.stop({ keepDatabase: options.keepData }).catch((error: unknown) => {
      log(`  could not stop the peer: ${error instanceof Error ? error.message : String(error)}`);
    });
    await statsPool?.end().catch(() => undefined);
  }
}

interface RunContext {
  stack: Stack;
  plan: BenchPlan["peer"];
  counter: ActivityCounter;
  pool: Stack["pool"];
  glyphDatabase: string;
  peer: RunningPeer;
}

function describeFailures(run: StoreRun): string {
  const kinds = Object.entries(run.failedByKind);
  if (kinds.length === 0) return "";
  return `, refused/failed: ${kinds.map(([kind, n]) => `${n} × ${kind}`).join(", ")}`;
}

// ------------------------------------------------------------------ requests

const JSON_HEADERS = { "content-type": "application/json", ...benchAuthorization };

function body(events: readonly WireEvent[], expected?: number | "any" | "no_stream", turn?: string): string {
  return JSON.stringify({
    events: events.map((event) => ({ event })),
    ...(expected === undefined ? {} : { expected_version: expected }),
    ...(turn === undefined ? {} : { turn }),
  });
}

function post(target: Target, streamId: string, text: string, extra: Record<string, string> = {}) {
  return httpRequest("POST", appendUrl(target.base, streamId), { ...JSON_HEADERS, ...extra }, text);
}

/** A new stream with `events` events (workflow_started, then context_updated), 500 per append. */
async function makeStream(target: Target, events: number): Promise<string> {
  const streamId = randomUUID();
  if (target.store === "glyph") createdStreams.add(streamId);
  let version = 0;
  while (version < events) {
    const size = Math.min(BATCH, events - version);
    const batch: WireEvent[] = [];
    for (let index = 0; index < size; index++) {
      const position = version + index + 1;
      batch.push(position === 1 ? startedEvent() : contextEvent(`k${position % 16}`, position));
    }
    const text =
      version === 0
        ? JSON.stringify({
            events: batch.map((event) => ({ event })),
            expected_version: "no_stream",
            stream_type: BENCH_STREAM_TYPE,
          })
        : body(batch, version);
    const response = await post(target, streamId, text);
    if (response.status !== 201) {
      throw new Error(
        `${target.store}: making a ${events}-event stream answered ${response.status}: ${response.body.slice(0, 300)}`,
      );
    }
    version += size;
  }
  return streamId;
}

async function versionOf(target: Target, streamId: string): Promise<number> {
  const response = await getState(target.base, streamId);
  if (response.status !== 200) throw new Error(`${target.store}: GET /state answered ${response.status}`);
  return Number((JSON.parse(response.body) as { version?: unknown }).version);
}

function completion(response: HttpResponse, ok: boolean): Completion {
  return {
    ok,
    units: ok ? 1 : 0,
    sentAt: response.sentAt,
    receivedAt: response.receivedAt,
    ...(ok
      ? {}
      : {
          kind: String(response.status),
          failure: `HTTP ${response.status}: ${response.body.slice(0, 200)}`,
        }),
  };
}

// ------------------------------------------------------------------ conditional appends

/** In the conditional case, each writer's every ADVANCE_EVERY-th append tries to move the workflow on. */
const ADVANCE_EVERY = 16;

interface ConditionalRequest {
  body: string;
  advances: boolean;
}

const stepId = (index: number) => `s${index}`;
const stepIndex = (id: unknown) => (typeof id === "string" ? Number(id.slice(1)) || 0 : 0);

/**
 * What a writer that believes the workflow is at step `step` sends, always "only if the
 * workflow is still at that step": a note in the context, or (one in ADVANCE_EVERY)
 * completing the step and activating the next, which exactly one of the writers at that
 * step can do. A writer refused 412 learns the current step from the refusal and goes on
 * from there: a lost race is not retried.
 */
function conditionalRequest(writer: number, sequence: number, step: number): ConditionalRequest {
  const advances = sequence % ADVANCE_EVERY === ADVANCE_EVERY - 1;
  const events = advances
    ? [
        { type: "step_completed", step_id: stepId(step), result: { by: writer } },
        { type: "step_activated", step_id: stepId(step + 1), assigned_to: [] },
      ]
    : [contextEvent(`w${writer % 16}`, sequence)];
  return {
    body: JSON.stringify({ events: events.map((event) => ({ event })), if: { current_step: stepId(step) } }),
    advances,
  };
}

/** The conditional case starts with its stream at step s0. */
async function activateFirstStep(target: Target, streamId: string, version: number): Promise<void> {
  const text = JSON.stringify({
    events: [{ event: { type: "step_activated", step_id: stepId(0), assigned_to: [] } }],
    expected_version: version,
  });
  const response = await post(target, streamId, text);
  if (response.status !== 201) {
    throw new Error(
      `${target.store}: activating the first step answered ${response.status}: ${response.body.slice(0, 300)}`,
    );
  }
}

// ------------------------------------------------------------------ one run

async function runCase(spec: CaseSpec, target: Target, context: RunContext): Promise<StoreRun> {
  const { plan } = context;
  closeConnections();
  // Actors of earlier runs give their connections back first (the streams made below keep theirs).
  if (target.store === "glyph") await waitForIdleActors(context);
  // Set up the streams (not measured).
  let streams: string[] = [];
  if (spec.kind === "streams") {
    streams = await inParallel(
      Array.from({ length: spec.streams }, (_, index) => index),
      16,
      () => makeStream(target, 1),
    );
  } else if (spec.kind !== "short") {
    streams = [await makeStream(target, spec.startEvents ?? 1)];
  }
  if (spec.kind === "conditional") await activateFirstStep(target, streams[0] ?? "", spec.startEvents ?? 1);
  const single = streams.length === 1 ? streams[0] : undefined;
  const before = single === undefined ? undefined : await versionOf(target, single);

  let accepted = 0;
  let stateReads = 0;
  // The conditional case: the step each writer believes current, and an intent refused 409 to send again.
  const steps = new Array<number>(spec.writers).fill(0);
  const pending = new Array<ConditionalRequest | undefined>(spec.writers);
  const known = new Array<number>(spec.writers).fill(before ?? 0);
  /** The turn each writer's last 409 gave (glyph-streams only), sent back with its retry. */
  const turns = new Array<string | undefined>(spec.writers).fill(undefined);
  const shortStream: string[] = [];
  const send = async (writer: number, sequence: number): Promise<Completion> => {
    const event = [contextEvent(`w${writer % 16}`, sequence)];
    let response: HttpResponse;
    switch (spec.kind) {
      case "short": {
        if (sequence % plan.shortStreamEvents === 0) {
          const streamId = randomUUID();
          if (target.store === "glyph") createdStreams.add(streamId);
          shortStream[writer] = streamId;
          const text = JSON.stringify({
            events: [{ event: startedEvent() }],
            expected_version: "no_stream",
            stream_type: BENCH_STREAM_TYPE,
          });
          response = await post(target, streamId, text);
        } else {
          response = await post(target, shortStream[writer] ?? "", body(event));
        }
        break;
      }
      case "long":
      case "any":
        response = await post(target, single ?? "", body(event));
        break;
      case "any-emmett-retry":
        response = await post(target, single ?? "", body(event), { "x-peer-retry": "on-version-conflict" });
        break;
      case "streams":
        response = await post(target, streams[writer % streams.length] ?? "", body(event));
        break;
      case "exact-retry": {
        response = await post(target, single ?? "", body(event, known[writer] ?? 0, turns[writer]));
        if (response.status === 201) {
          known[writer] = Number((JSON.parse(response.body) as { version?: unknown }).version);
          turns[writer] = undefined;
        } else if (response.status === 409) {
          // Retry with the version the refusal names (and the turn, if it gave one); without a version, read it.
          const refusal = JSON.parse(response.body) as { actual?: unknown; turn?: unknown };
          const { actual } = refusal;
          turns[writer] = typeof refusal.turn === "string" ? refusal.turn : undefined;
          if (typeof actual === "number") known[writer] = actual;
          else {
            stateReads++;
            known[writer] = await versionOf(target, single ?? "");
          }
        }
        break;
      }
      case "conditional": {
        const request = pending[writer] ?? conditionalRequest(writer, sequence, steps[writer] ?? 0);
        response = await post(
          target,
          single ?? "",
          request.body,
          target.store === "peer" ? { "x-peer-retry": "on-version-conflict" } : {},
        );
        // A version conflict (the peer's only) leaves the intent standing: sent again as it was.
        pending[writer] = response.status === 409 ? request : undefined;
        if (response.status === 201 && request.advances) steps[writer] = (steps[writer] ?? 0) + 1;
        if (response.status === 412) {
          // The refusal says where the workflow is: no read needed.
          const { state } = JSON.parse(response.body) as { state?: { current_step?: unknown } };
          steps[writer] = stepIndex(state?.current_step);
        }
        break;
      }
    }
    const ok = response.status === 201;
    if (ok) accepted++;
    return completion(response, ok);
  };

  const countsBefore = await context.counter.snapshot();
  const sampler = sampleConnections(context.pool, [target.database]);
  const meter = startCpuMeter();
  const result = await runClosedLoop({
    writers: spec.writers,
    warmupMs: plan.warmupMs,
    durationMs: plan.durationMs,
    maxRequestsPerWriter: plan.maxRequestsPerWriter,
    send,
  });
  const cpu = meter.stop();
  const peaks = await sampler.stop();
  const countsAfter = await context.counter.snapshot();
  const after = single === undefined ? undefined : await versionOf(target, single);
  return {
    store: target.store,
    appendsPerSecond: result.requestsPerSecond,
    latency: summarize(result.latencies),
    okRequests: result.okRequests,
    failedByKind: result.failedByKind,
    failures: result.failures,
    writersProgressed: result.okByWriter.filter((n) => n > 0).length,
    stateReads,
    ...(before !== undefined && after !== undefined ? { streamVersions: { before, after } } : {}),
    requests: result.sent,
    acceptedInAll: accepted,
    cpu,
    statements: context.counter.delta(countsBefore, countsAfter, target.database).statements,
    peakConnections: peaks.get(target.database) ?? 0,
  };
}

/** Waits until no actor of an earlier run holds a connection (bounded). */
async function waitForIdleActors(context: RunContext): Promise<void> {
  const deadline = Date.now() + GLYPH_IDLE_WAIT_MS;
  while (Date.now() < deadline) {
    const now = await connectionsNow(context.pool, [context.glyphDatabase]);
    if ((now.get(context.glyphDatabase) ?? 0) === 0) return;
    await sleep(250);
  }
}

// ------------------------------------------------------------------ statements per append

/**
 * One writer per store, `statementAppends` appends one after another on a new stream (the
 * first creates it), both stores between the same two snapshots. Without
 * pg_stat_statements, pg_stat_database is read after STATS_SETTLE_MS of quiet before and
 * after, so that every transaction has been reported; one-time costs (the stream's
 * creation, a connection's first query) are spread over all the appends.
 */
async function countPerAppend(
  targets: Record<StoreName, Target>,
  context: RunContext,
  log: (line: string) => void,
): Promise<PerAppendCounts[]> {
  const { counter, plan } = context;
  const settle = async () => {
    if (counter.statementsCounted) return;
    log(`  waiting ${STATS_SETTLE_MS / 1000} s for pg_stat_database to report every transaction …`);
    await sleep(STATS_SETTLE_MS);
  };
  const appends = plan.statementAppends;
  await settle();
  const before = await counter.snapshot();
  const measured: Array<{ target: Target; inProcess?: number }> = [];
  for (const store of ["glyph", "peer"] as const) {
    const target = targets[store];
    closeConnections();
    const inProcessBefore = store === "peer" ? await context.peer.statements() : 0;
    const streamId = await makeStream(target, 1);
    for (let index = 1; index < appends; index++) {
      const response = await post(target, streamId, body([contextEvent("count", index)]));
      if (response.status !== 201) throw new Error(`${store}: append answered ${response.status}`);
    }
    measured.push({
      target,
      ...(store === "peer" ? { inProcess: (await context.peer.statements()) - inProcessBefore } : {}),
    });
  }
  await settle();
  const after = await counter.snapshot();
  const rows: PerAppendCounts[] = measured.map(({ target, inProcess }) => {
    const delta = counter.delta(before, after, target.database);
    return {
      store: target.store,
      appends,
      statements: delta.statements,
      transactions: counter.statementsCounted ? undefined : delta.transactions,
      ...(inProcess === undefined ? {} : { statementsInProcess: inProcess }),
    };
  });
  for (const row of rows) {
    const per = (n: number | undefined, what: string) =>
      n === undefined ? [] : [`${(n / row.appends).toFixed(2)} ${what}/append`];
    log(
      `  ${row.store === "glyph" ? "glyph-streams" : "peer (Emmett)"}, one writer, ${row.appends} appends: ` +
        [
          ...per(row.statements, "statements"),
          ...per(row.transactions, "transactions"),
          ...per(row.statementsInProcess, "statements (counted in its process)"),
        ].join(", "),
    );
  }
  return rows;
}
