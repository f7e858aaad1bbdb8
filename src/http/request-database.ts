import type { Context } from "hono";
import type { WorkerConfig } from "../config/worker-config";
import { createPool } from "../db/create-pool";
import { PgEventStore } from "../events/postgres";

/**
 * A store for one Worker request that is not stream-scoped (listing, health). A
 * Worker may not reuse connections across requests, so the pool ends with the request;
 * `ended` is called once its session is closed (a DatabaseGate's slot is given back then).
 */
export function requestStore(
  c: Context,
  config: WorkerConfig,
  ended: () => void = () => undefined,
): { store: PgEventStore; release: () => void } {
  const pool = createPool(config.database, { max: 1, idleTimeoutMillis: config.databaseIdleTimeoutMs });
  return {
    store: new PgEventStore(pool),
    release: () =>
      c.executionCtx.waitUntil(
        pool
          .end()
          .catch(() => undefined)
          .finally(ended),
      ),
  };
}
