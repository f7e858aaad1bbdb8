import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { testAuthTokens } from "./test/support/test-tokens";

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "node",
          include: [
            "test/unit/**/*.test.ts",
            "test/store/**/*.test.ts",
            "test/e2e/**/*.test.ts",
            "test/reliability/**/*.test.ts",
          ],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
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
                // Test-only secrets for test/worker/webhooks.test.ts: "acme" has one, "rotating" two.
                WEBHOOK_SECRETS: JSON.stringify({
                  acme: ["whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="],
                  rotating: [
                    "whsec_MyorDvj0PvHN+CGHTYEVKNtGCpTaWuVTplQrLk94lVc=",
                    "whsec_YGM8EJ+pNMRsjhsTh7+SRtCaEMt6W/mw6TRr+VIx/5Q=",
                  ],
                }),
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
