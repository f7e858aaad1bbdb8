import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_WEBHOOK_SOURCES, testAuthTokens } from "./test/support/test-tokens";

// The suite in tiers (npm run test:<tier>), all of them in `npm test`:
//   unit         pure code, no database: seconds
//   store        the event store against PostgreSQL, from Node
//   worker       the Worker, its actors and routes inside workerd
//   e2e          the real Worker over real HTTP and WebSocket (wrangler's startWorker)
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

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      nodeTier("unit", ["test/unit/**/*.test.ts"]),
      nodeTier("store", ["test/store/**/*.test.ts"]),
      nodeTier("e2e", ["test/e2e/**/*.test.ts"]),
      {
        test: {
          ...nodeTier("reliability", ["test/reliability/**/*.test.ts"]).test,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                DATABASE_URL: inject("databaseUrl"),
                DATABASE_WS_PROXY: inject("databaseWsProxy"),
                AUTH_TOKENS: testAuthTokens(),
                // Idle actors let go of their connection soon, so many test streams never exhaust the server.
                DATABASE_IDLE_TIMEOUT_MS: "1000",
                // Test-only webhook sources (test/worker/webhooks.test.ts, security.test.ts).
                WEBHOOK_SECRETS: JSON.stringify(TEST_WEBHOOK_SOURCES),
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
    ],
  },
});
