import type { Pool } from "@neondatabase/serverless";
import { inject } from "vitest";
import ws from "ws";
import { type NeonHttpProxy, startNeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";

/** A pool on the run's test database, through the run's bridge. */
export function openTestPool(max = 4): Pool {
  const settings = readDatabaseSettings({
    DATABASE_URL: inject("databaseUrl"),
    DATABASE_WS_PROXY: inject("databaseWsProxy"),
  });
  return createPool(settings, { max, webSocketConstructor: ws });
}

/**
 * A /sql endpoint of the test's own in front of the run's database, for a Worker whose
 * database a test breaks (DATABASE_HTTP_ENDPOINT = its fetchEndpoint). `port` 0 picks a
 * free one; an earlier endpoint's port and secret `path` bring it back where the Worker
 * looks for it.
 */
export async function httpEndpointToTestDatabase(
  options: { port?: number; path?: string; idleTimeoutMs?: number } = {},
): Promise<NeonHttpProxy> {
  const target = new URL(inject("databaseUrl"));
  const start = () =>
    startNeonHttpProxy({
      target: { host: target.hostname, port: Number(target.port || 5432) },
      port: options.port ?? 0,
      ...(options.path === undefined ? {} : { path: options.path }),
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    });
  // Reopening the same port right after closing it can meet the old socket for a moment.
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= 20 || !options.port) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
