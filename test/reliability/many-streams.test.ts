import { Client } from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrate } from "../../scripts/lib/migrations";
import { openNodeDatabase } from "../../scripts/lib/node-database";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { type NeonHttpProxy, startNeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import { type LocalWorker, startLocalWorker } from "../../scripts/local/worker";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { adminAuthorization, testAuthTokens } from "../support/test-tokens";
import { started } from "./events";
import { attempt, recordResults } from "./support";

// Thousands of streams against a server with few connections (issue 11, item 2): 2,000
// distinct streams, each created by one append, 64 requests in flight, against a
// PostgreSQL of its own with max_connections = 100 (a throwaway embedded cluster, so
// the run does not depend on the machine's server). The actors query over HTTP and
// hold nothing between statements, so the server's connections are the /sql
// endpoint's pool, however many streams are active: every append must be answered
// 201 (no failure, no 503), all within one minute, and the peak of the server's
// client backends is reported.

const STREAMS = 2_000;
const IN_FLIGHT = 64;
const WITHIN_MS = 60_000;
const MAX_CONNECTIONS = 100;
const SAMPLE_EVERY_MS = 20;
const SAMPLER = "many-streams-sampler";

let embedded: EmbeddedPostgres | undefined;
let endpoint: NeonHttpProxy | undefined;
let worker: LocalWorker | undefined;
let sampler: Client | undefined;

beforeAll(async () => {
  embedded = await startEmbeddedPostgres({ settings: { max_connections: String(MAX_CONNECTIONS) } });
  const database = await openNodeDatabase(readDatabaseSettings({ DATABASE_URL: embedded.url }), 1);
  try {
    await migrate(database.pool);
  } finally {
    await database.close();
  }
  endpoint = await startNeonHttpProxy({ target: { host: embedded.host, port: embedded.port } });
  worker = await startLocalWorker({
    vars: {
      DATABASE_URL: embedded.url,
      DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint,
      AUTH_TOKENS: testAuthTokens(),
    },
  });
  const url = new URL(embedded.url);
  url.searchParams.set("application_name", SAMPLER);
  sampler = new Client({ connectionString: url.toString() });
  await sampler.connect();
}, 180_000);

afterAll(async () => {
  await sampler?.end().catch(() => undefined);
  await worker?.stop();
  await endpoint?.close();
  await embedded?.close();
});

it(`appends to ${STREAMS} distinct streams within a minute, ${IN_FLIGHT} in flight, on a server with max_connections = ${MAX_CONNECTIONS}: no failure, no 503`, async () => {
  if (!worker || !sampler || !endpoint) throw new Error("the stack did not start");
  const client = sampler;
  const backends = async (): Promise<number> => {
    const result = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name <> $1",
      [SAMPLER],
    );
    return result.rows[0]?.n ?? -1;
  };
  const before = await backends();
  let peak = before;
  let sampling = true;
  const sampling_ = (async () => {
    while (sampling) {
      peak = Math.max(peak, await backends());
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  })();

  // The Worker itself, as production serves it (not wrangler's dev proxy in front of it).
  const base = worker.url;
  const statuses = new Map<string, number>();
  const failures: string[] = [];
  let next = 0;
  const startedAt = Date.now();
  const send = async () => {
    for (let index = next++; index < STREAMS; index = next++) {
      const streamId = crypto.randomUUID();
      const answer = await attempt(
        new URL(`/streams/${streamId}/events`, base),
        {
          method: "POST",
          headers: { "content-type": "application/json", ...adminAuthorization },
          body: JSON.stringify({
            expected_version: "no_stream",
            events: [{ event_id: crypto.randomUUID(), event: started() }],
          }),
        },
        { timeoutMs: WITHIN_MS },
      );
      const key = answer.kind === "answer" ? String(answer.status) : "no answer";
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (answer.kind !== "answer" || answer.status !== 201) {
        if (failures.length < 10) failures.push(`${streamId}: ${JSON.stringify(answer).slice(0, 300)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => send()));
  const tookMs = Date.now() - startedAt;
  sampling = false;
  await sampling_;
  const after = await backends();

  const figures = {
    streams: STREAMS,
    inFlight: IN_FLIGHT,
    maxConnections: MAX_CONNECTIONS,
    tookMs,
    statuses: Object.fromEntries(statuses),
    serverClientBackends: { before, peak, after },
    endpointPoolAfter: endpoint.openConnections(),
  };
  console.log(`reliability many streams: ${JSON.stringify(figures)}`);
  recordResults("many-streams", figures);

  expect(failures).toEqual([]);
  expect(statuses.get("201")).toBe(STREAMS);
  expect(statuses.get("503") ?? 0).toBe(0);
  expect(tookMs).toBeLessThan(WITHIN_MS);
  expect(peak).toBeLessThan(MAX_CONNECTIONS);
}, 240_000);
