import { neon, neonConfig } from "@neondatabase/serverless";
import type { DatabaseSettings } from "./database-settings";
import type { SqlQueryable } from "./sql-client";

export interface HttpClientOptions {
  /** A statement not answered within this is abandoned (its fetch aborted). */
  timeoutMs: number;
}

/**
 * The Worker's way to the database: Neon's SQL over HTTP (`neon()`), one fetch per
 * statement, nothing held between them, so an idle actor holds no connection and
 * thousands of streams share the server connections of Neon's pooler (measured in
 * docs/ARCHITECTURE.md, decision 24). Over HTTP every statement is its own transaction,
 * which is all the store needs: each of its writes is one statement.
 *
 * Without DATABASE_HTTP_ENDPOINT the driver posts to `https://<host of DATABASE_URL>/sql`
 * (Neon); locally that variable names the /sql endpoint in front of an ordinary
 * PostgreSQL (scripts/local/neon-http-proxy.ts). The endpoint is process-wide
 * (neonConfig), like the WebSocket settings in createPool.
 */
export function openHttpClient(settings: DatabaseSettings, options: HttpClientOptions): SqlQueryable {
  if (settings.DATABASE_HTTP_ENDPOINT !== undefined)
    neonConfig.fetchEndpoint = settings.DATABASE_HTTP_ENDPOINT;
  const sql = neon(settings.DATABASE_URL, { fullResults: true });
  return {
    query: (text, values) =>
      sql.query(text, values, { fetchOptions: { signal: AbortSignal.timeout(options.timeoutMs) } }),
  };
}
