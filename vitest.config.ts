import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_WEBHOOK_SOURCES, testAuthTokens, WORKER_TIER_LIMITS } from "./test/support/test-tokens";

// The suite in tiers (npm run test:<tier>), all of them in `npm test`:
//   unit         pure code, no database: seconds
//   store        the event store against PostgreSQL, from Node
//   worker       the Worker, its actors and routes inside workerd (and worker-limits:
//                the same with low limits, for the tests of those limits)
//   e2e          the real Worker over real HTTP and WebSocket (wrangler's startWorker)
//   browser      the inspector (/inspect) in a real Chromium against that same Worker
//   reliability  the ledger, faults and bad-input suites at the short scale, after
//                every other tier and one file at a time, so that no other test
//                competes with them for the machine
// The global setup starts a database only when a tier that needs one runs.
const nodeTier = (name: string, include: string[]) => ({
  test: {
    name,
    include,
    environment: "node" as const,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

const LIMITS_TEST = "test/worker/security-limits.test.ts";

/** A tier inside workerd: the Worker as wrangler.toml has it, with the test run's database and credentials. */
function workerTier(
  name: string,
  options: {
    include: string[];
    exclude: string[];
    bindings: Record<string, string>;
    ratelimits: Record<string, { namespace_id: string; simple: { limit: number; period: 10 | 60 } }>;
  },
) {
  return {
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            DATABASE_URL: inject("databaseUrl"),
            DATABASE_WS_PROXY: inject("databaseWsProxy"),
            DATABASE_HTTP_ENDPOINT: inject("databaseHttpEndpoint"),
            // Every actor of this tier is created with a location hint (workerd accepts and ignores it).
            ACTOR_LOCATION_HINT: "enam",
            AUTH_TOKENS: testAuthTokens(),
            // Test-only webhook sources (test/worker/webhooks.test.ts, security.test.ts).
            WEBHOOK_SECRETS: JSON.stringify(TEST_WEBHOOK_SOURCES),
            ...options.bindings,
          },
          ratelimits: options.ratelimits,
        },
      })),
    ],
    test: { name, include: options.include, exclude: options.exclude, testTimeout: 60_000 },
  };
}

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      nodeTier("unit", ["test/unit/**/*.test.ts"]),
      nodeTier("store", ["test/store/**/*.test.ts"]),
      nodeTier("e2e", ["test/e2e/**/*.test.ts"]),
      nodeTier("browser", ["test/browser/**/*.test.ts"]),
      {
        test: {
          ...nodeTier("reliability", ["test/reliability/**/*.test.ts"]).test,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      workerTier("worker", {
        include: ["test/worker/**/*.test.ts"],
        exclude: [LIMITS_TEST],
        bindings: {},
        ratelimits: {},
      }),
      // Row 3 of issue 10: limits low enough to reach, in a Worker of their own, so that no
      // other test spends them (the request rate is counted per token across the runtime).
      workerTier("worker-limits", {
        include: [LIMITS_TEST],
        exclude: [],
        bindings: {
          WATCHERS_PER_STREAM: String(WORKER_TIER_LIMITS.watchersPerStream),
          WATCHERS_PER_TOKEN: String(WORKER_TIER_LIMITS.watchersPerToken),
          BODY_TIMEOUT_MS: String(WORKER_TIER_LIMITS.bodyTimeoutMs),
        },
        // The same binding as wrangler.toml's, with a limit the test can reach.
        ratelimits: {
          REQUEST_RATE_LIMIT: {
            namespace_id: "1001",
            simple: { limit: WORKER_TIER_LIMITS.requestsPer10Seconds, period: 10 },
          },
        },
      }),
    ],
  },
});
