import { startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { holdLifeline } from "../../scripts/local/lifeline";
import { startNeonHttpProxy } from "../../scripts/local/neon-http-proxy";
import { startWebSocketBridge } from "../../scripts/local/websocket-bridge";
import { BENCH_ENDPOINT_IDLE_MS } from "./plan";

// Child process of `npm run bench`: the database side of the local stack, kept out of
// the load generator's event loop so that neither delays the other's I/O.
//   BENCH_DATABASE_URL set   → only the /sql endpoint (the Worker's way to the database,
//                              Neon's SQL over HTTP) and the WebSocket-to-TCP bridge (the
//                              bench's own pool) in front of that server;
//   unset                    → a throwaway embedded PostgreSQL 17 cluster plus both,
//                              with pg_stat_statements loaded (it counts the statements
//                              per append of glyph-streams and of the peer, see
//                              bench/lib/database-activity.ts).
// Prints one JSON line {"url", "proxyUrl", "fetchEndpoint", "kind"} once all listen, then runs until
// its stdin closes (the parent is gone) or it is signalled.

const HOST = "127.0.0.1";

async function main(): Promise<void> {
  const given = process.env.BENCH_DATABASE_URL;
  const embedded = given
    ? undefined
    : await startEmbeddedPostgres({ settings: { shared_preload_libraries: "pg_stat_statements" } });
  const url = given ?? embedded?.url ?? "";
  const target = new URL(url);
  const server = { host: target.hostname.replace(/^\[|\]$/g, ""), port: Number(target.port || 5432) };
  const bridge = await startWebSocketBridge({ target: server, host: HOST });
  // Scenarios that count server connections wait for those of earlier runs to close.
  const endpoint = await startNeonHttpProxy({ target: server, idleTimeoutMs: BENCH_ENDPOINT_IDLE_MS });
  holdLifeline(async () => {
    await endpoint.close().catch(() => undefined);
    await bridge.close().catch(() => undefined);
    await embedded?.close().catch(() => undefined);
  });
  process.stdout.write(
    `${JSON.stringify({
      url,
      proxyUrl: bridge.proxyUrl,
      fetchEndpoint: endpoint.fetchEndpoint,
      kind: embedded ? "embedded" : "server",
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`database host failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
