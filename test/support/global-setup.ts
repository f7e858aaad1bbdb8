import type { TestProject } from "vitest/node";
import { migrate } from "../../scripts/lib/migrations";
import { openNodeDatabase } from "../../scripts/lib/node-database";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { startNeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import { startWebSocketBridge } from "../../scripts/local/websocket-bridge";
import { readDatabaseSettings } from "../../src/db/database-settings";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    databaseWsProxy: string;
    /** The local /sql endpoint (Neon's SQL over HTTP) in front of the database: what the Worker uses. */
    databaseHttpEndpoint: string;
    /** "server" for the PostgreSQL given by TEST_DATABASE_URL, "embedded" for the run's own cluster. */
    databaseKind: "server" | "embedded";
  }
}

/** The tiers whose tests never touch a database. */
const WITHOUT_DATABASE = new Set(["unit"]);

// One database for the whole run: the PostgreSQL server given by TEST_DATABASE_URL
// (CI), or else a throwaway embedded PostgreSQL 17 cluster made for this run and
// deleted after it. The Worker reaches it, as it reaches Neon, over HTTP through the
// local /sql endpoint started here; tests' own pools through the WebSocket bridge
// started here. Tests isolate themselves with fresh stream ids. A run of tiers
// that need no database (npm run test:unit) starts none.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (project.vitest.projects.every((tier) => WITHOUT_DATABASE.has(tier.name))) return async () => {};
  let embedded: EmbeddedPostgres | undefined;
  let url = process.env.TEST_DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres();
    url = embedded.url;
  }
  const target = new URL(url);
  const server = { host: target.hostname, port: Number(target.port || 5432) };
  const bridge = await startWebSocketBridge({ target: server });
  const httpEndpoint = await startNeonHttpProxy({ target: server });
  const settings = readDatabaseSettings({ DATABASE_URL: url, DATABASE_WS_PROXY: bridge.proxyUrl });
  const database = await openNodeDatabase(settings, 1);
  try {
    await migrate(database.pool);
  } finally {
    await database.close();
  }
  project.provide("databaseUrl", url);
  project.provide("databaseWsProxy", bridge.proxyUrl);
  project.provide("databaseHttpEndpoint", httpEndpoint.fetchEndpoint);
  project.provide("databaseKind", embedded ? "embedded" : "server");
  return async () => {
    await httpEndpoint.close();
    await bridge.close();
    await embedded?.close();
  };
}
