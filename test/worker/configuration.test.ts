import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { BASE_URL, expectProblem, problemCode } from "../support/http-client";
import { adminAuthorization } from "../support/test-tokens";
import { webhookHeaders } from "../support/webhook-signing";

// The Worker with one variable set wrong: requests are answered 503 with a problem that
// names the variable and says where to fix it, before anything reaches the database.

/** Sends `request` to the Worker with `overrides` on top of the test configuration. */
async function fetchWith(overrides: Record<string, unknown>, request: Request): Promise<Response> {
  const context = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...overrides }, context);
  await waitOnExecutionContext(context);
  return response;
}

const streamPath = `/streams/${crypto.randomUUID()}`;
const INVALID: Array<[string, Record<string, unknown>, RegExp]> = [
  ["DATABASE_URL", { DATABASE_URL: "mysql://localhost/glyph" }, /DATABASE_URL: must be a postgres:\/\//],
  [
    "DATABASE_TIMEOUT_MS",
    { DATABASE_TIMEOUT_MS: "ten seconds" },
    /DATABASE_TIMEOUT_MS: must be a whole number/,
  ],
  ["DATABASE_WS_PROXY", { ENVIRONMENT: "production" }, /DATABASE_WS_PROXY: is a local-development setting/],
  ["AUTH_TOKENS", { AUTH_TOKENS: '[{"id": "ci"}]' }, /AUTH_TOKENS\.0\.sha256/],
  ["WEBHOOK_SECRETS", { WEBHOOK_SECRETS: '{"acme": []}' }, /WEBHOOK_SECRETS\.acme: list at least one secret/],
];

describe("an invalid variable", () => {
  for (const [variable, overrides, reason] of INVALID) {
    it(`${variable}: 503 misconfigured on every route that takes a token, and on /healthz`, async () => {
      for (const [method, path] of [
        ["GET", "/healthz"],
        ["GET", "/streams"],
        ["GET", `${streamPath}/state`],
        ["POST", `${streamPath}/events`],
        ["GET", "/no/such/route"],
      ] as const) {
        const request = new Request(`${BASE_URL}${path}`, {
          method,
          headers: { "content-type": "application/json", ...adminAuthorization },
          ...(method === "POST" ? { body: '{"events": []}' } : {}),
        });
        const problem = await expectProblem(await fetchWith(overrides, request), 503, reason);
        expect(problemCode(problem)).toBe("misconfigured");
        expect(problem.detail).toMatch(new RegExp(`Fix .*${variable}`));
        expect(problem.detail).toContain("see the README's Configuration");
      }
    });
  }

  it("is named to a webhook sender, with no more detail than the variable", async () => {
    const body = JSON.stringify({ stream_id: crypto.randomUUID(), events: [] });
    const headers = await webhookHeaders("whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM=", "msg_1", body);
    const request = new Request(`${BASE_URL}/webhooks/acme`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });
    const response = await fetchWith({ DATABASE_TIMEOUT_MS: "-1" }, request);
    const problem = await expectProblem(response, 503, /configuration \(DATABASE_TIMEOUT_MS\) is invalid/);
    expect(problemCode(problem)).toBe("webhooks_misconfigured");
    expect(problem.detail).not.toMatch(/whole number/);
  });

  it("leaves /openapi.json served: it reads no configuration", async () => {
    const response = await fetchWith({ DATABASE_TIMEOUT_MS: "-1" }, new Request(`${BASE_URL}/openapi.json`));
    expect(response.status).toBe(200);
  });
});
