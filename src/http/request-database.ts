import type { Pool } from "@neondatabase/serverless";
import type { Context } from "hono";
import type { WorkerConfig } from "../config/worker-config";
import { createPool } from "../db/create-pool";
import { openHttpClient } from "../db/http-client";
import { PgEventStore } from "../events/postgres";

/**
 * A connection for one Worker request that is not stream-scoped and reads much (the
 * feed). A Worker may not reuse connections across requests, so the pool ends with the
 * request; `ended` is called once its session is closed (a DatabaseGate's slot is given
 * back then).
 */
export function requestDatabase(
  c: Context,
  config: WorkerConfig,
  ended: () => void = () => undefined,
): { pool: Pool; release: () => void } {
  const pool = createPool(config.database, { max: 1, idleTimeoutMillis: config.databaseIdleTimeoutMs });
  return {
    pool,
    release: () =>
      c.executionCtx.waitUntil(
        pool
          .end()
          .catch(() => undefined)
          .finally(ended),
      ),
  };
}

/**
 * A store for one Worker request that is not stream-scoped (listing, health): over
 * HTTP like the actors' (docs/ARCHITECTURE.md, decision 24), so it holds nothing and
 * `release` only calls `ended`.
 */
export function requestStore(
  _c: Context,
  config: WorkerConfig,
  ended: () => void = () => undefined,
): { store: PgEventStore; release: () => void } {
  const client = openHttpClient(config.database, { timeoutMs: config.databaseTimeoutMs });
  return { store: new PgEventStore(client), release: ended };
}
