import { isDeepStrictEqual } from "node:util";
import type { Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { NeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import type { WebSocketBridge } from "../../scripts/local/websocket-bridge";
import { WorkflowEvent } from "../../src/events/types";
import { EventsPage, StateResponse, StreamHeadResponse } from "../../src/http/schemas";
import { applyEvent } from "../../src/state/apply-event";
import { emptyWorkflowState, type WorkflowState } from "../../src/state/workflow-state";
import { httpEndpointToTestDatabase, openTestPool } from "../support/database";
import { adminAuthorization } from "../support/test-tokens";
import { composeEvents, started } from "./events";
import { Ledger, type LedgerEntry, verifyLedger } from "./ledger";
import {
  type Attempt,
  attempt,
  bridgeToTestDatabase,
  Random,
  recordResults,
  seedFor,
  sleep,
  WorkerUnderTest,
} from "./support";

// Mixed load through the running stack (issue 8): under the old embedded PGlite,
// appends and reads sent together over HTTP lost acknowledged writes, answered 503
// `portal "" does not exist`, and left hundreds of database connections open long
// after the load. Here many clients append to and read from 16 streams at once, over
// real HTTP to the real Worker in workerd, through a /sql endpoint (what the actors
// query) and a bridge (what a Pool would use) of this test's own, so that together
// they count exactly the stack's server connections. Then:
//   - no request was answered 5xx, and none failed without an answer;
//   - every acknowledged append is in workflow_events exactly once, at the versions
//     it was answered with (verifyLedger, reading the table directly);
//   - every state a client read, now and at the end, equals the pure reducer over
//     the stored events up to that version; every event page matches the stored rows;
//   - within one client a stream's version never goes backwards (its own acknowledged
//     appends included: reads go through the actor, which promises read-your-writes);
//   - the stack's connections return to the count before the load within the
//     /sql endpoint pool's idle timeout + 5 s.

const STREAMS = 16;
const CLIENTS = 24;
const OPS_PER_CLIENT = 40;
/** A 409 sends the same event ids again against the version it names, at most this often. */
const MAX_REPLANS = 5;
const IDLE_TIMEOUT_MS = 1_000;
const DRAIN_GRACE_MS = 5_000;
const REQUEST_TIMEOUT_MS = 20_000;

const { seed, partSeed } = seedFor("mixed-load");

let bridge: WebSocketBridge | undefined;
let endpoint: NeonHttpProxy | undefined;
let worker: WorkerUnderTest | undefined;
let pool: Pool | undefined;
let sampler: ReturnType<typeof setInterval> | undefined;

beforeAll(async () => {
  bridge = await bridgeToTestDatabase();
  endpoint = await httpEndpointToTestDatabase({ idleTimeoutMs: IDLE_TIMEOUT_MS });
  worker = await WorkerUnderTest.start(bridge.proxyUrl, {
    DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint,
  });
  // The test's own queries go through the run's shared bridge, never through `bridge` or `endpoint`.
  pool = openTestPool(2);
});
afterAll(async () => {
  if (sampler) clearInterval(sampler);
  await worker?.stop();
  await endpoint?.close();
  await bridge?.close();
  await pool?.end();
});

type ReadKind = "state" | "events" | "head";
type Op = "append" | ReadKind;
const OP_WEIGHTS: ReadonlyArray<readonly [number, Op]> = [
  [10, "append"],
  [4, "state"],
  [3, "events"],
  [3, "head"],
];
type AppendMode = "omitted" | "any" | "exact" | "if-match";
const APPEND_MODES: ReadonlyArray<readonly [number, AppendMode]> = [
  [3, "omitted"],
  [2, "any"],
  [3, "exact"],
  [2, "if-match"],
];

/** What one read showed, kept to compare with the log once the load is over. */
type Observation =
  | { kind: "state"; client: number; streamId: string; version: number; state: unknown }
  | { kind: "head"; client: number; streamId: string; version: number; status: string }
  | {
      kind: "events";
      client: number;
      streamId: string;
      events: Array<{ event_id: string; version: number; event: unknown }>;
    };

interface StoredRow {
  event_id: string;
  version: number;
  event: unknown;
}

const normalise = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

it(`keeps every acknowledged write, answers no 5xx and lets go of its connections under mixed load (${STREAMS} streams, ${CLIENTS} clients x ${OPS_PER_CLIENT} requests)`, async () => {
  if (!bridge || !endpoint || !worker || !pool) throw new Error("the stack did not start");
  const stack = {
    worker,
    pool,
    /** The stack's server connections: its actors' (through the endpoint) and any Pool's (through the bridge). */
    openConnections: () => (bridge?.openConnections() ?? 0) + (endpoint?.openConnections() ?? 0),
  };
  console.log(`reliability mixed load: seed=${seed} (RELIABILITY_SEED=${seed} repeats the choices)`);

  const serverConnections = async (): Promise<number> => {
    const result = await stack.pool.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'",
    );
    const row: unknown = result.rows[0];
    return typeof row === "object" && row !== null && "n" in row && typeof row.n === "number" ? row.n : -1;
  };

  const baseline = stack.openConnections();
  const serverBefore = await serverConnections();
  let peak = baseline;
  const sample = () => {
    peak = Math.max(peak, stack.openConnections());
  };
  sampler = setInterval(sample, 5);

  const ledger = new Ledger();
  const statuses = new Map<string, number>();
  const violations: string[] = [];
  /** Every 5xx answer and every request left without one, with what the server said (issue 8: 503 `portal "" does not exist`). */
  const serverErrors: string[] = [];
  const observations: Observation[] = [];
  let replans = 0;
  let reads = 0;

  /** One request through the stack; every answer and failure is counted by route. */
  const send = async (
    route: string,
    path: string,
    init: { method: string; headers?: Record<string, string>; body?: string } = { method: "GET" },
  ): Promise<Attempt> => {
    const result = await attempt(
      new URL(path, stack.worker.url),
      { ...init, headers: { ...adminAuthorization, ...init.headers } },
      { timeoutMs: REQUEST_TIMEOUT_MS },
    );
    sample();
    const key = result.kind === "answer" ? `${route} ${result.status}` : `${route} failed: ${result.reason}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    if (result.kind === "failed") serverErrors.push(`${route} ${path}: no answer (${result.reason})`);
    else if (result.status >= 500) serverErrors.push(`${route} ${path}: ${describeAnswer(result)}`);
    return result;
  };

  const append = (entry: LedgerEntry, expected: number | "any" | undefined, ifMatch?: number) =>
    send(`POST /streams/:id/events`, `/streams/${entry.streamId}/events`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(ifMatch === undefined ? {} : { "if-match": `"${ifMatch}"` }),
      },
      body: ledger.body(entry, expected),
    });

  // The streams, created before the load (each starts a workflow, so every later event is valid).
  const streamIds = Array.from({ length: STREAMS }, () => crypto.randomUUID());
  const loadStartedAt = Date.now();
  await Promise.all(
    streamIds.map(async (streamId) => {
      const entry = ledger.open(-1, streamId, [started()], "create");
      const settled = ledger.settle(
        entry,
        await send("POST /streams/:id/events", `/streams/${streamId}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: ledger.body(entry, "no_stream"),
        }),
      );
      if (settled.kind !== "acked" || settled.versions[0] !== 1)
        violations.push(`creating ${streamId} answered ${JSON.stringify(settled)}`);
    }),
  );

  const runClient = async (client: number) => {
    const rng = new Random((partSeed + client * 7919) >>> 0);
    /** The newest version this client has seen of each stream, and where it saw it. */
    const seen = new Map<string, { version: number; from: string }>();
    const observe = (streamId: string, version: number, from: string) => {
      const before = seen.get(streamId);
      if (before !== undefined && version < before.version) {
        violations.push(
          `client ${client}: ${from} of ${streamId} showed version ${version} after ${before.from} had shown ${before.version}`,
        );
      }
      if (before === undefined || version >= before.version) seen.set(streamId, { version, from });
    };

    for (let op = 0; op < OPS_PER_CLIENT; op++) {
      const streamId = rng.pick(streamIds);
      const kind = rng.weighted(OP_WEIGHTS);
      if (kind === "append") {
        const mode = rng.weighted(APPEND_MODES);
        const composed = composeEvents(rng, client, op, "sometimes");
        const entry = ledger.open(
          client,
          streamId,
          composed.events,
          composed.invalid ? `${mode}+invalid` : mode,
        );
        let believed = seen.get(streamId)?.version ?? 1;
        for (let round = 0; ; round++) {
          const answer =
            mode === "if-match"
              ? await append(entry, undefined, believed)
              : await append(entry, mode === "exact" ? believed : mode === "any" ? "any" : undefined);
          const settled = ledger.settle(entry, answer);
          if (settled.kind === "acked") {
            if (composed.invalid)
              ledger.violation(entry, "an append breaking the workflow rules was acknowledged");
            if ((mode === "exact" || mode === "if-match") && settled.versions[0] !== believed + 1)
              ledger.violation(entry, `expected version ${believed} but stored from ${settled.versions[0]}`);
            observe(streamId, settled.versions[settled.versions.length - 1] ?? 0, `its append #${entry.seq}`);
            break;
          }
          if (settled.kind === "rejected") {
            const conflict = settled.status === 409 && settled.code === "concurrency_conflict";
            const rules = settled.status === 422 && settled.code === "invalid_event_sequence";
            if (rules && composed.invalid) break;
            if (!conflict || (mode !== "exact" && mode !== "if-match")) {
              ledger.violation(entry, `refused with ${settled.status} ${settled.code}`);
              break;
            }
            if (settled.actual === undefined || settled.actual <= believed) {
              ledger.violation(entry, `409 for expected ${believed} names actual ${settled.actual}`);
              break;
            }
            observe(streamId, settled.actual, `a 409 for append #${entry.seq}`);
            if (round >= MAX_REPLANS) break;
            // Nothing of the append is stored: the same event ids again, against the version the 409 named.
            ledger.reopen(entry);
            replans++;
            believed = settled.actual;
            continue;
          }
          // 503, no answer, or an answer the ledger did not accept: recorded there and in `statuses`.
          break;
        }
        continue;
      }

      reads++;
      if (kind === "state") {
        const answer = await send("GET /streams/:id/state", `/streams/${streamId}/state`);
        const parsed =
          answer.kind === "answer" && answer.status === 200
            ? StateResponse.safeParse(answer.json)
            : undefined;
        if (answer.kind !== "answer" || !parsed?.success) {
          violations.push(`client ${client}: GET /state of ${streamId}: ${describeAnswer(answer)}`);
          continue;
        }
        if (parsed.data.version !== parsed.data.state.version)
          violations.push(
            `client ${client}: GET /state of ${streamId} says version ${parsed.data.version} for a state at ${parsed.data.state.version}`,
          );
        const raw = (answer.json as { state: unknown }).state;
        observations.push({ kind: "state", client, streamId, version: parsed.data.version, state: raw });
        observe(streamId, parsed.data.version, "GET /state");
      } else if (kind === "head") {
        const answer = await send("GET /streams/:id", `/streams/${streamId}`);
        const parsed =
          answer.kind === "answer" && answer.status === 200
            ? StreamHeadResponse.safeParse(answer.json)
            : undefined;
        if (answer.kind !== "answer" || !parsed?.success) {
          violations.push(`client ${client}: GET /streams/${streamId}: ${describeAnswer(answer)}`);
          continue;
        }
        observations.push({
          kind: "head",
          client,
          streamId,
          version: parsed.data.version,
          status: parsed.data.status,
        });
        observe(streamId, parsed.data.version, "GET head");
      } else {
        // Backward from the newest (its first event is the head), or forward from a little
        // before the newest version this client knows, to the end (streams stay far below 1000 events).
        const backward = rng.chance(0.5);
        const known = seen.get(streamId)?.version ?? 1;
        const from = Math.max(1, known - rng.int(0, 10));
        const limit = backward ? rng.int(1, 20) : 1000;
        const query = backward ? `direction=backward&limit=${limit}` : `from=${from}&limit=${limit}`;
        const answer = await send("GET /streams/:id/events", `/streams/${streamId}/events?${query}`);
        const parsed =
          answer.kind === "answer" && answer.status === 200 ? EventsPage.safeParse(answer.json) : undefined;
        if (answer.kind !== "answer" || !parsed?.success) {
          violations.push(`client ${client}: GET /events?${query} of ${streamId}: ${describeAnswer(answer)}`);
          continue;
        }
        const versions = parsed.data.events.map((event) => event.version);
        const first = versions[0];
        const step = backward ? -1 : 1;
        if (
          first === undefined ||
          (!backward && first !== from) ||
          !versions.every((version, index) => version === first + step * index) ||
          (backward && versions.length !== Math.min(limit, first))
        ) {
          violations.push(
            `client ${client}: GET /events?${query} of ${streamId} returned versions [${versions.join(",")}]`,
          );
          continue;
        }
        const rawEvents = (
          answer.json as { events: Array<{ event_id: string; version: number; event: unknown }> }
        ).events;
        observations.push({
          kind: "events",
          client,
          streamId,
          events: rawEvents.map(({ event_id, version, event }) => ({ event_id, version, event })),
        });
        observe(streamId, backward ? first : (versions[versions.length - 1] ?? 0), `GET /events?${query}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, client) => runClient(client)));
  const loadEndedAt = Date.now();
  sample();
  const peakDuringLoad = peak;
  const serverAfterLoad = await serverConnections();

  // The stack lets go of its connections once the endpoint's pool has been idle for IDLE_TIMEOUT_MS.
  const drainDeadline = loadEndedAt + IDLE_TIMEOUT_MS + DRAIN_GRACE_MS;
  while (stack.openConnections() > baseline && Date.now() < drainDeadline) await sleep(50);
  const openAfterDrain = stack.openConnections();
  const backToBaselineMs = Date.now() - loadEndedAt;
  clearInterval(sampler);
  sampler = undefined;
  const serverAfterDrain = await serverConnections();

  // The ledger against the table, read directly; the final /state of each stream against the reducer.
  const { problems, figures } = await verifyLedger(stack.pool, ledger, streamIds, async (streamId) => {
    const answer = await send("GET /streams/:id/state (final)", `/streams/${streamId}/state`);
    if (answer.kind !== "answer" || answer.status !== 200) {
      violations.push(`final GET /state of ${streamId}: ${describeAnswer(answer)}`);
      return undefined;
    }
    return answer.json;
  });

  // Every read during the load against the stored log: states against the reducer
  // over the stored events up to their version, pages against the stored rows.
  const rows = new Map<string, StoredRow[]>();
  for (const row of (
    await stack.pool.query(
      `SELECT event_id::text AS event_id, stream_id::text AS stream_id, version::int AS version, event
           FROM workflow_events WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id, version`,
      [streamIds],
    )
  ).rows as Array<StoredRow & { stream_id: string }>) {
    rows.set(row.stream_id, [...(rows.get(row.stream_id) ?? []), row]);
  }
  const prefixes = new Map<string, WorkflowState[]>();
  for (const streamId of streamIds) {
    let state = emptyWorkflowState();
    const states = [state];
    for (const row of rows.get(streamId) ?? []) {
      state = applyEvent(state, WorkflowEvent.parse(row.event));
      states.push(state);
    }
    prefixes.set(streamId, states);
  }
  let statesChecked = 0;
  let eventsChecked = 0;
  for (const seen of observations) {
    const states = prefixes.get(seen.streamId) ?? [];
    const stored = rows.get(seen.streamId) ?? [];
    if (seen.kind === "state") {
      const expected = states[seen.version];
      statesChecked++;
      if (expected === undefined)
        violations.push(
          `client ${seen.client} read ${seen.streamId} at version ${seen.version}, beyond the stored log (${stored.length} events)`,
        );
      else if (!isDeepStrictEqual(normalise(seen.state), normalise(expected)))
        violations.push(
          `client ${seen.client} read a state of ${seen.streamId} at version ${seen.version} that differs from the reducer over the stored events`,
        );
    } else if (seen.kind === "head") {
      const expected = states[seen.version];
      if (expected === undefined || expected.status !== seen.status)
        violations.push(
          `client ${seen.client} read the head of ${seen.streamId} at version ${seen.version} (${seen.status}); the stored log has ${stored.length} events (${expected?.status})`,
        );
    } else {
      for (const event of seen.events) {
        eventsChecked++;
        const row = stored[event.version - 1];
        if (
          row === undefined ||
          row.event_id !== event.event_id ||
          !isDeepStrictEqual(WorkflowEvent.parse(row.event), WorkflowEvent.parse(event.event))
        ) {
          violations.push(
            `client ${seen.client} read event ${event.event_id} at ${seen.streamId}@${event.version}; the table holds ${row?.event_id ?? "nothing"} there`,
          );
        }
      }
    }
  }

  const summary = {
    seed,
    appendsSent: figures.appendsSent,
    appendsAcked: figures.acked,
    eventsAcked: figures.eventsAcknowledged,
    rejected: figures.rejected,
    replans,
    reads,
    statesChecked,
    eventsReadChecked: eventsChecked,
    loadMs: loadEndedAt - loadStartedAt,
    stackConnections: { baseline, peak: peakDuringLoad, afterDrain: openAfterDrain },
    backToBaselineMs,
    serverConnections: { before: serverBefore, afterLoad: serverAfterLoad, afterDrain: serverAfterDrain },
    statuses: Object.fromEntries([...statuses.entries()].sort()),
  };
  console.log(
    `reliability mixed load: ${figures.acked} appends acked (${figures.eventsAcknowledged} events, ${figures.rejected} refused, ${replans} replans) and ${reads} reads in ${summary.loadMs} ms; ` +
      `stack connections baseline ${baseline}, peak ${peakDuringLoad}, back to ${openAfterDrain} ${backToBaselineMs} ms after the load ` +
      `(idle timeout ${IDLE_TIMEOUT_MS} ms); server client backends ${serverBefore} before, ${serverAfterLoad} after the load, ${serverAfterDrain} after the drain; ` +
      `statuses ${JSON.stringify(summary.statuses)}`,
  );
  recordResults("mixed-load", { ...summary, ledger: figures });

  const seedNote = `seed ${seed}: RELIABILITY_SEED=${seed} repeats this run's choices`;
  expect
    .soft(
      serverErrors.slice(0, 20),
      `no request answered 5xx or left without an answer (${serverErrors.length} did)`,
    )
    .toEqual([]);
  expect.soft(ledger.violations.slice(0, 20), seedNote).toEqual([]);
  expect.soft(violations.slice(0, 20), seedNote).toEqual([]);
  expect.soft(problems.slice(0, 20), seedNote).toEqual([]);
  expect.soft(figures.lost).toBe(0);
  expect.soft(figures.duplicated).toBe(0);
  expect.soft(figures.unexpected).toBe(0);
  expect.soft(figures.unresolved, "every append got a definite answer").toBe(0);
  expect.soft(figures.eventsChecked).toBe(figures.eventsAcknowledged);
  expect
    .soft(figures.eventsStored, "nothing stored beyond the acknowledged events")
    .toBe(figures.eventsAcknowledged);
  expect
    .soft(
      openAfterDrain,
      `the stack's connections return to ${baseline} within ${IDLE_TIMEOUT_MS + DRAIN_GRACE_MS} ms of the load`,
    )
    .toBe(baseline);
  // One connection per active actor, and nothing more.
  expect.soft(peakDuringLoad, "at most one connection per stream").toBeLessThanOrEqual(baseline + STREAMS);
  // The run exercised what it claims to: many acknowledged appends, reads of every kind.
  expect.soft(figures.acked).toBeGreaterThan(CLIENTS * 5);
  expect.soft(statesChecked).toBeGreaterThan(0);
  expect.soft(eventsChecked).toBeGreaterThan(0);
  expect.soft(observations.some((seen) => seen.kind === "head")).toBe(true);
}, 120_000);

function describeAnswer(answer: Attempt): string {
  return answer.kind === "answer"
    ? `${answer.status} ${answer.text.slice(0, 300)}`
    : `no answer (${answer.reason})`;
}
