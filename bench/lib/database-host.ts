import { startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { holdLifeline } from "../../scripts/local/lifeline";
import { startWebSocketBridge } from "../../scripts/local/websocket-bridge";

// Child process of `npm run bench`: the database side of the local stack, kept out of
// the load generator's event loop so that neither delays the other's I/O.
//   BENCH_DATABASE_URL set   → only the WebSocket-to-TCP bridge in front of that server;
//   unset                    → a throwaway embedded PostgreSQL 17 cluster plus the bridge,
//                              with pg_stat_statements loaded (it counts the statements
//                              per append of glyph-streams and of the peer, see
//                              bench/lib/database-activity.ts).
// Prints one JSON line {"url", "proxyUrl", "kind"} once both listen, then runs until
// its stdin closes (the parent is gone) or it is signalled.

const HOST = "127.0.0.1";

async function main(): Promise<void> {
  const given = process.env.BENCH_DATABASE_URL;
  const embedded = given
    ? undefined
    : await startEmbeddedPostgres({ settings: { shared_preload_libraries: "pg_stat_statements" } });
  const url = given ?? embedded?.url ?? "";
  const target = new URL(url);
  const bridge = await startWebSocketBridge({
    target: { host: target.hostname.replace(/^\[|\]$/g, ""), port: Number(target.port || 5432) },
    host: HOST,
  });
  holdLifeline(async () => {
    await bridge.close().catch(() => undefined);
    await embedded?.close().catch(() => undefined);
  });
  process.stdout.write(
    `${JSON.stringify({ url, proxyUrl: bridge.proxyUrl, kind: embedded ? "embedded" : "server" })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`database host failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
