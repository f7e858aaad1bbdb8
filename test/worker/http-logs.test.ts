import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { BASE_URL, expectProblem, problemCode } from "../support/http-client";
import { adminAuthorization, TEST_TOKENS } from "../support/test-tokens";
import { type WebhookHeaders, webhookHeaders } from "../support/webhook-signing";

// What an operator finds in the logs for what the Worker answers on its own: one JSON
// line per 5xx (the stream actor logs the failures it returns) and one per refused
// webhook delivery, never with a token, a secret, a signature or a body.

afterEach(() => {
  vi.restoreAllMocks();
});

/** Captures the JSON lines written to console.error and console.warn while `work` runs. */
async function linesDuring(work: () => Promise<void>): Promise<Array<Record<string, unknown>>> {
  const written: string[] = [];
  const capture = (line: unknown) => {
    written.push(String(line));
  };
  vi.spyOn(console, "error").mockImplementation(capture);
  vi.spyOn(console, "warn").mockImplementation(capture);
  await work();
  vi.restoreAllMocks();
  return written.map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function fetchWith(overrides: Record<string, unknown>, request: Request): Promise<Response> {
  const context = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...overrides }, context);
  await waitOnExecutionContext(context);
  return response;
}

const variables: Record<string, unknown> = { ...env };
const ACME = (JSON.parse(String(variables.WEBHOOK_SECRETS)) as Record<string, string[]>).acme?.[0] ?? "";
/** The test server, but a database it does not have: the Worker's own queries fail at once. */
const MISSING_DATABASE = (() => {
  const url = new URL(String(variables.DATABASE_URL));
  url.pathname = "/no_such_database";
  return url.toString();
})();

describe("a 5xx the Worker answers itself", () => {
  it("logs one line when the configuration is invalid, naming the variable, never the token", async () => {
    const lines = await linesDuring(async () => {
      const response = await fetchWith(
        { DATABASE_TIMEOUT_MS: "soon" },
        new Request(`${BASE_URL}/streams/${crypto.randomUUID()}/state`, { headers: adminAuthorization }),
      );
      await expectProblem(response, 503);
    });
    expect(lines).toEqual([
      {
        time: expect.any(String),
        event: "request_failed",
        level: "error",
        operation: "configuration",
        code: "misconfigured",
        variables: ["DATABASE_TIMEOUT_MS"],
        cause: expect.stringMatching(/DATABASE_TIMEOUT_MS: must be a whole number/),
      },
    ]);
    expect(JSON.stringify(lines)).not.toContain(TEST_TOKENS.admin);
  });

  it("logs one line with the cause when /healthz or the list cannot reach the database", async () => {
    for (const [path, operation] of [
      ["/healthz", "health"],
      ["/streams", "list_streams"],
    ]) {
      const lines = await linesDuring(async () => {
        const response = await fetchWith(
          { DATABASE_URL: MISSING_DATABASE },
          new Request(`${BASE_URL}${path}`, { headers: adminAuthorization }),
        );
        expect(problemCode(await expectProblem(response, 503))).toBe("unavailable");
      });
      expect(lines, path).toEqual([
        expect.objectContaining({
          event: "request_failed",
          level: "error",
          operation,
          code: "unavailable",
          cause: expect.stringMatching(/no_such_database/),
        }),
      ]);
      expect(JSON.stringify(lines)).not.toContain(TEST_TOKENS.admin);
    }
  });
});

describe("a refused webhook delivery", () => {
  function delivery(source: string, body: string, headers: WebhookHeaders): Request {
    return new Request(`${BASE_URL}/webhooks/${source}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    });
  }
  const body = JSON.stringify({ stream_id: crypto.randomUUID(), events: [] });

  it("logs the source and the reason, never the signature or the secret", async () => {
    const headers = await webhookHeaders(
      "whsec_c3RyYW5nZXIgc3RyYW5nZXIgc3RyYW5nZXIgISE=",
      `msg_${crypto.randomUUID()}`,
      body,
    );
    const lines = await linesDuring(async () => {
      await expectProblem(await fetchWith({}, delivery("acme", body, headers)), 401);
    });
    expect(lines).toEqual([
      {
        time: expect.any(String),
        event: "webhook_refused",
        level: "warn",
        source: "acme",
        status: 401,
        code: "invalid_webhook_signature",
        reason: expect.stringMatching(/No v1 entry of webhook-signature matches/),
      },
    ]);
    const text = JSON.stringify(lines);
    expect(text).not.toContain(headers["webhook-signature"].slice(3));
    expect(text).not.toContain(ACME.slice("whsec_".length));
  });

  it("logs an unknown source, a stale delivery and a body that is not valid", async () => {
    const fresh = await webhookHeaders(ACME, `msg_${crypto.randomUUID()}`, "{}");
    const stale = await webhookHeaders(ACME, `msg_${crypto.randomUUID()}`, body, 1_000_000);
    const lines = await linesDuring(async () => {
      await expectProblem(await fetchWith({}, delivery("nobody", body, fresh)), 404);
      await expectProblem(await fetchWith({}, delivery("acme", body, stale)), 401);
      await expectProblem(await fetchWith({}, delivery("acme", "{}", fresh)), 400);
    });
    expect(lines.map(({ source, code }) => [source, code])).toEqual([
      ["nobody", "webhook_source_not_found"],
      ["acme", "stale_webhook_timestamp"],
      ["acme", "invalid_request"],
    ]);
  });

  it("logs an invalid configuration with its cause for the operator, while the sender learns only the variable", async () => {
    const headers = await webhookHeaders(ACME, `msg_${crypto.randomUUID()}`, body);
    const secretLike = '{"acme": ["whsec_bm90IGEga2V5IGJ1dCBhIHNlY3JldA==", 7]}';
    const lines = await linesDuring(async () => {
      const response = await fetchWith({ WEBHOOK_SECRETS: secretLike }, delivery("acme", body, headers));
      await expectProblem(response, 503);
    });
    expect(lines).toEqual([
      {
        time: expect.any(String),
        event: "webhook_refused",
        level: "error",
        source: "acme",
        status: 503,
        code: "webhooks_misconfigured",
        reason: expect.stringMatching(/WEBHOOK_SECRETS\.acme\.1: expected a string/),
      },
    ]);
    expect(JSON.stringify(lines)).not.toContain("bm90IGEga2V5");
  });
});
