import { inject } from "vitest";
import { startLocalWorker } from "../../scripts/local/worker";
import { testAuthTokens } from "../support/test-tokens";

export interface RunningWorker {
  url: URL;
  stop(): Promise<void>;
}

/**
 * The real Worker (wrangler.toml, as `npm start` runs it) served over HTTP by workerd,
 * reaching the test database over HTTP through the run's /sql endpoint (or the one a
 * test gives as DATABASE_HTTP_ENDPOINT in `vars`), and through the bridge at `proxyUrl`
 * where it uses a WebSocket Pool. Tests talk to it through wrangler's dev proxy, as a
 * developer's curl does.
 */
export async function startWorker(
  proxyUrl: string,
  vars: Record<string, string> = {},
): Promise<RunningWorker> {
  const worker = await startLocalWorker({
    vars: {
      DATABASE_URL: inject("databaseUrl"),
      DATABASE_WS_PROXY: proxyUrl,
      DATABASE_HTTP_ENDPOINT: inject("databaseHttpEndpoint"),
      AUTH_TOKENS: testAuthTokens(),
      ...vars,
    },
  });
  return { url: worker.proxyUrl, stop: worker.stop };
}
