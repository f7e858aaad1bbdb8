import { neon, neonConfig, type Pool } from "@neondatabase/serverless";
import { createPool } from "../../src/db/create-pool";
import { PgEventStore } from "../../src/events/postgres";
import type { WorkflowEvent } from "../../src/events/types";
import { applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";

// The three ways to run one statement that docs/decisions/database-path.md compares,
// written once and run both in Node and inside workerd (neon-http-proxy-measure-worker.ts),
// with the product's own driver configuration (createPool) and store (PgEventStore):
//
//   http      neon() over fetch to the /sql endpoint: nothing held between statements
//   ws-warm   a WebSocket Pool whose one connection is already open (today's warm actor)
//   ws-fresh  a new WebSocket connection for the statement: connect, auth, statement, close
//
// Measurement code only: nothing here is asserted by a test.

export type PathName = "http" | "ws-warm" | "ws-fresh";
export const PATHS: readonly PathName[] = ["http", "ws-warm", "ws-fresh"];

/**
 * select: `SELECT $1::int`, the transport alone.
 * append: the store's one-statement append (a new stream, one event, trusted state), what a warm actor writes.
 */
export type StatementName = "select" | "append";
export const STATEMENTS: readonly StatementName[] = ["select", "append"];

/**
 * How an actor holds its connection in the burst: `http` and `ws-fresh` hold nothing
 * after the statement; `ws-held` keeps it until the pool's idle timeout (today: 10 s).
 */
export type ActorMode = "http" | "ws-fresh" | "ws-held";

export interface MeasureSettings {
  DATABASE_URL: string;
  DATABASE_WS_PROXY: string;
  /** The /sql endpoint (neonConfig.fetchEndpoint). */
  DATABASE_HTTP_ENDPOINT: string;
}

type WebSocketConstructor = typeof neonConfig.webSocketConstructor;

interface Queryable {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

const STARTED: WorkflowEvent = {
  type: "workflow_started",
  workflow_id: "8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c",
  config_version: "v1",
  started_at: "2026-03-01T10:00:00Z",
};
const STATE_AFTER_STARTED = applyEvents(emptyWorkflowState(), [STARTED]);

async function runStatement(target: Queryable, statement: StatementName, index: number): Promise<void> {
  if (statement === "select") {
    await target.query("SELECT $1::int AS n", [index]);
    return;
  }
  // Exact expected version, trusted state, no caller ids: the actor's append, one statement.
  await new PgEventStore(target as unknown as Pool).append({
    streamId: crypto.randomUUID(),
    expectedVersion: "no_stream",
    events: [{ event: STARTED }],
    stateAfter: STATE_AFTER_STARTED,
  });
}

function httpTarget(settings: MeasureSettings): Queryable {
  neonConfig.fetchEndpoint = settings.DATABASE_HTTP_ENDPOINT;
  const sql = neon(settings.DATABASE_URL, { fullResults: true });
  return { query: (text, values) => sql.query(text, values) };
}

function openPool(
  settings: MeasureSettings,
  webSocketConstructor: WebSocketConstructor | undefined,
  idleMs = 10_000,
) {
  return createPool(
    { DATABASE_URL: settings.DATABASE_URL, DATABASE_WS_PROXY: settings.DATABASE_WS_PROXY },
    { max: 1, idleTimeoutMillis: idleMs, ...(webSocketConstructor ? { webSocketConstructor } : {}) },
  );
}

/**
 * Runs `statement` `count` times one after another on `path`, after `warmup` runs that
 * are not kept, and answers each run's duration in milliseconds as measured by `now`.
 */
export async function measureLatency(options: {
  settings: MeasureSettings;
  path: PathName;
  statement: StatementName;
  count: number;
  warmup: number;
  now: () => number;
  webSocketConstructor?: WebSocketConstructor;
}): Promise<number[]> {
  const { settings, path, statement, count, warmup, now, webSocketConstructor } = options;
  const samples: number[] = [];
  const record = (index: number, started: number) => {
    if (index >= warmup) samples.push(now() - started);
  };
  if (path === "http") {
    const target = httpTarget(settings);
    for (let i = 0; i < warmup + count; i++) {
      const started = now();
      await runStatement(target, statement, i);
      record(i, started);
    }
  } else if (path === "ws-warm") {
    const pool = openPool(settings, webSocketConstructor);
    try {
      await pool.query("SELECT 1");
      for (let i = 0; i < warmup + count; i++) {
        const started = now();
        await runStatement(pool, statement, i);
        record(i, started);
      }
    } finally {
      await pool.end();
    }
  } else {
    for (let i = 0; i < warmup + count; i++) {
      const pool = openPool(settings, webSocketConstructor);
      try {
        const started = now();
        await runStatement(pool, statement, i);
        record(i, started);
      } finally {
        await pool.end();
      }
    }
  }
  return samples;
}

export interface ActorOutcome {
  ok: boolean;
  ms: number;
  error?: string;
  /** Resolves when the actor has let go of its connection (ws-held: after the idle timeout). */
  released: Promise<void>;
}

/** One "actor": its own driver objects, one append, then holding or not as `mode` says. */
export async function runActor(options: {
  settings: MeasureSettings;
  mode: ActorMode;
  idleMs: number;
  now: () => number;
  webSocketConstructor?: WebSocketConstructor;
}): Promise<ActorOutcome> {
  const { settings, mode, idleMs, now, webSocketConstructor } = options;
  const started = now();
  if (mode === "http") {
    try {
      await runStatement(httpTarget(settings), "append", 0);
      return { ok: true, ms: now() - started, released: Promise.resolve() };
    } catch (error) {
      return { ok: false, ms: now() - started, error: describe(error), released: Promise.resolve() };
    }
  }
  const pool = openPool(settings, webSocketConstructor, idleMs);
  let outcome: Omit<ActorOutcome, "released">;
  try {
    await runStatement(pool, "append", 0);
    outcome = { ok: true, ms: now() - started };
  } catch (error) {
    outcome = { ok: false, ms: now() - started, error: describe(error) };
  }
  if (mode === "ws-fresh" || !outcome.ok) return { ...outcome, released: pool.end().catch(() => undefined) };
  // Held like today's actor: the pool closes its idle connection itself after idleMs.
  const released = new Promise<void>((resolve) => setTimeout(resolve, idleMs + 250)).then(() =>
    pool.end().catch(() => undefined),
  );
  return { ...outcome, released };
}

function describe(error: unknown): string {
  const message =
    error instanceof Error ? error.message : String((error as { message?: unknown })?.message ?? error);
  // One line, without the ids that make every message distinct.
  return message.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<id>").split("\n")[0] ?? message;
}

/** The p-th percentile (0–100) of the samples, nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}
