import { inject } from "vitest";
import { unstable_startWorker } from "wrangler";
import { testAuthTokens } from "../support/test-tokens";

export interface RunningWorker {
  url: URL;
  stop(): Promise<void>;
}

/**
 * The real Worker (wrangler.toml, as `wrangler dev` runs it) served over HTTP by
 * workerd, reaching the test database through the bridge at `proxyUrl`.
 */
export async function startWorker(
  proxyUrl: string,
  vars: Record<string, string> = {},
): Promise<RunningWorker> {
  const plain = (value: string) => ({ type: "plain_text" as const, value });
  const bindings = Object.fromEntries(
    Object.entries({
      DATABASE_URL: inject("databaseUrl"),
      DATABASE_WS_PROXY: proxyUrl,
      AUTH_TOKENS: testAuthTokens(),
      ...vars,
    }).map(([name, value]) => [name, plain(value)]),
  );
  const worker = await unstable_startWorker({
    config: "./wrangler.toml",
    bindings,
    dev: {
      server: { hostname: "127.0.0.1", port: 0 },
      inspector: false,
      watch: false,
      persist: false,
      logLevel: "warn",
    },
  });
  return { url: await worker.url, stop: () => worker.dispose() };
}
