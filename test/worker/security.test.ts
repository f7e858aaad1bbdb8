import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { api, expectProblem, problemCode } from "../support/http-client";
import { adminAuthorization } from "../support/test-tokens";

// Issue 10 (security hardening), row by row, through real requests into the Worker:
// each test replays what an attacker did and checks what the Worker answers now.
// The rows that need real sockets (the database bridge, sessions counted at it) are in
// test/e2e/security.test.ts.

const BASE = "http://glyph.test";
const variables = env as unknown as Record<string, string>;

/** Sends `request` to the Worker with `overrides` on top of the test configuration (as another deployment would). */
async function fetchWith(overrides: Record<string, string>, request: Request): Promise<Response> {
  const context = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...overrides }, context);
  await waitOnExecutionContext(context);
  return response;
}

/** The JSON lines written through `spy` whose event is `event`. */
function logLines(spy: { mock: { calls: unknown[][] } }, event: string): Array<Record<string, unknown>> {
  return spy.mock.calls
    .map(([line]) => {
      try {
        return JSON.parse(String(line)) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((line) => line.event === event);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("row 4: text PostgreSQL cannot hold in a query parameter", () => {
  const streamId = crypto.randomUUID();
  const cases: Array<[string, string]> = [
    ["/streams?type=a%00b", "type"],
    ["/streams?type=%00", "type"],
    ["/streams?type=invoice%00", "type"],
    ["/streams?type=%ED%A0%80", "type"],
    ["/streams?type=%C3%BC", "type"],
    ["/streams?status=running%00", "status"],
    ["/streams?cursor=%00", "cursor"],
    [`/streams/${streamId}/events?from=1%00`, "from"],
    [`/streams/${streamId}/events?limit=%00`, "limit"],
    [`/streams/${streamId}/state?at=%00`, "at"],
  ];
  for (const [path, parameter] of cases) {
    it(`GET ${path.replace(streamId, ":id")} is refused 400 naming ${parameter}, never 503`, async () => {
      const problem = await expectProblem(await api(path), 400);
      expect(problemCode(problem)).toBe("invalid_request");
      expect(problem.detail).toMatch(new RegExp(`\\b${parameter}\\b`));
    });
  }
});

describe("row 5: what the database says never reaches a client", () => {
  const wrongRole = new URL(variables.DATABASE_URL ?? "");
  wrongRole.username = "glyph_no_such_role";
  wrongRole.password = "not-the-password";
  const overrides = { DATABASE_URL: wrongRole.toString() };

  it("/healthz (open to anyone) answers a fixed sentence; the log has the cause", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await fetchWith(overrides, new Request(`${BASE}/healthz`));
    const problem = await expectProblem(response, 503);
    expect(problemCode(problem)).toBe("unavailable");
    expect(problem.detail).toBe(
      "The database did not answer; the operator can find the cause in the logs. Retry later.",
    );
    expect(JSON.stringify(problem)).not.toMatch(/glyph_no_such_role|role|password|authentication/i);
    const [line] = logLines(errors, "request_failed");
    expect(line).toMatchObject({ operation: "health", code: "unavailable" });
    expect(String(line?.cause)).toMatch(/glyph_no_such_role/);
  });

  it("a listing answers the fixed sentence of unavailable; the log has the cause", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await fetchWith(
      overrides,
      new Request(`${BASE}/streams?limit=1`, { headers: adminAuthorization }),
    );
    const problem = await expectProblem(response, 503);
    expect(problemCode(problem)).toBe("unavailable");
    expect(problem.detail).toBe(
      "The database is unavailable; retry the request, with the same event ids for an append.",
    );
    expect(JSON.stringify(problem)).not.toMatch(/glyph_no_such_role|password|authentication/i);
    expect(String(logLines(errors, "request_failed")[0]?.cause)).toMatch(/glyph_no_such_role/);
  });
});
