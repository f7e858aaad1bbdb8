import type { TestProject } from "vitest/node";
import { migrate } from "../../scripts/lib/migrations";
import { openNodeDatabase } from "../../scripts/lib/node-database";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { startWebSocketBridge } from "../../scripts/local/websocket-bridge";
import { readDatabaseSettings } from "../../src/db/database-settings";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    databaseWsProxy: string;
    /** "postgresql" for a real server (TEST_DATABASE_URL), "pglite" for the embedded one. */
    databaseKind: "postgresql" | "pglite";
  }
}

// One database for the whole run: a real PostgreSQL when TEST_DATABASE_URL is set
// (CI), the embedded PGlite otherwise. Tests reach it, like the Worker does, through
// the WebSocket bridge started here, and isolate themselves with fresh stream ids.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let embedded: EmbeddedPostgres | undefined;
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres();
    url = embedded.url;
  }
  const target = new URL(url);
  const bridge = await startWebSocketBridge({
    target: { host: target.hostname, port: Number(target.port || 5432) },
  });
  const settings = readDatabaseSettings({ DATABASE_URL: url, DATABASE_WS_PROXY: bridge.proxyUrl });
  const database = await openNodeDatabase(settings, 1);
  try {
    await migrate(database.pool);
  } finally {
    await database.close();
  }
  project.provide("databaseUrl", url);
  project.provide("databaseWsProxy", bridge.proxyUrl);
  project.provide("databaseKind", embedded ? "pglite" : "postgresql");
  return async () => {
    await bridge.close();
    await embedded?.close();
  };
}
