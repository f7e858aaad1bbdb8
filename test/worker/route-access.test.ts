import { SELF } from "cloudflare:test";
import { OpenAPIHono } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import {
  declaredAccess,
  openRoute,
  requireDeclaredAccess,
  requireScope,
} from "../../src/http/access-control";
import { createApp } from "../../src/http/app";
import { BASE_URL, expectProblem, problemCode } from "../support/http-client";
import { LIMITED_STREAM_ID, TEST_TOKENS } from "../support/test-tokens";

// Each route declares who may call it. These tests hold the declarations to a table
// written out here (so a new route must be added to it on purpose), check that the app
// refuses to be built with a route that declares nothing, and that each route refuses
// a token without its scope: access fails closed.

/** Every route of the API and the access it must declare. */
const EXPECTED_ACCESS: Record<string, string> = {
  "GET /healthz": "open",
  "GET /openapi.json": "open",
  "POST /webhooks/:source": "open",
  "GET /streams": "read, many streams",
  "GET /streams/:streamId": "read, one stream",
  "GET /streams/:streamId/events": "read, one stream",
  "POST /streams/:streamId/events": "append, one stream",
  "GET /streams/:streamId/state": "read, one stream",
  "GET /streams/:streamId/watch": "read, one stream",
  "GET /events": "read, many streams",
  "GET /watch": "read, many streams",
  "GET /subscriptions": "admin, many streams",
  "GET /subscriptions/:name": "admin, many streams",
  "PUT /subscriptions/:name": "admin, many streams",
  "DELETE /subscriptions/:name": "admin, many streams",
  "POST /subscriptions/:name/pause": "admin, many streams",
  "POST /subscriptions/:name/resume": "admin, many streams",
  "POST /subscriptions/:name/replay": "admin, many streams",
  "GET /subscriptions/:name/dead-letters": "admin, many streams",
  "POST /subscriptions/:name/dead-letters/redrive": "admin, many streams",
};

const app = createApp();

/** Every route of the app, as "METHOD path", with what it declares (each route declares once: createApp checks). */
function declaredRoutes(): Record<string, string> {
  const declared: Record<string, string> = {};
  for (const route of app.routes) {
    const access = declaredAccess(route.handler);
    if (route.method === "ALL" || access === undefined) continue;
    declared[`${route.method} ${route.path}`] = access.token ? `${access.scope}, ${access.reach}` : "open";
  }
  return declared;
}

const streamId = crypto.randomUUID();
const concrete = (path: string) =>
  path.replace(":streamId", streamId).replace(":source", "acme").replace(":name", "no-such-subscription");
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function send(method: string, path: string, headers: Record<string, string>): Promise<Response> {
  return SELF.fetch(`${BASE_URL}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(method === "POST" ? { body: '{"events": []}' } : {}),
  });
}

describe("each route declares who may call it", () => {
  it("as the table says, and every route of the app is in the table", () => {
    expect(declaredRoutes()).toEqual(EXPECTED_ACCESS);
    const routeKeys = new Set(
      app.routes.filter((route) => route.method !== "ALL").map((route) => `${route.method} ${route.path}`),
    );
    expect([...routeKeys].sort()).toEqual(Object.keys(EXPECTED_ACCESS).sort());
  });

  it("or the app is not built: a route without a declaration, with two, or with one not first", () => {
    const handler = () => new Response("ok");
    const undeclared = new OpenAPIHono();
    undeclared.get("/open", openRoute("a test"), handler);
    undeclared.post("/secret", handler);
    expect(() => requireDeclaredAccess(undeclared.routes)).toThrow(/these do not: POST \/secret\./);

    const twice = new OpenAPIHono();
    twice.get("/x", requireScope("read", "many streams"), openRoute("a test"), handler);
    expect(() => requireDeclaredAccess(twice.routes)).toThrow(/GET \/x/);

    const late = new OpenAPIHono();
    late.get("/x", (_c, next) => next(), requireScope("read", "many streams"), handler);
    expect(() => requireDeclaredAccess(late.routes)).toThrow(/GET \/x/);

    const declared = new OpenAPIHono();
    declared.get("/x", requireScope("read", "many streams"), handler);
    declared.get("/y", openRoute("a test"), handler);
    expect(() => requireDeclaredAccess(declared.routes)).not.toThrow();
  });
});

describe("a token without a route's scope is refused (403) on every route that takes one", () => {
  const tokenRoutes = Object.entries(EXPECTED_ACCESS).filter(([, access]) => access !== "open");
  for (const [key, access] of tokenRoutes) {
    const [method = "", path = ""] = key.split(" ");
    const scope = access.split(",")[0];
    const without = scope === "read" ? TEST_TOKENS.appender : TEST_TOKENS.reader;
    it(`${key}: needs ${scope}`, async () => {
      const response = await send(method, concrete(path), bearer(without));
      const problem = await expectProblem(
        response,
        403,
        new RegExp(`lacks the ${scope} scope that ${method} `),
      );
      expect(problemCode(problem)).toBe("forbidden");
    });
  }

  for (const [key, access] of tokenRoutes) {
    const [method = "", path = ""] = key.split(" ");
    it(`${key}: a token limited to other streams is refused (${access.split(", ")[1]})`, async () => {
      const response = await send(method, concrete(path), bearer(TEST_TOKENS.oneStream));
      await expectProblem(
        response,
        403,
        access.startsWith("admin")
          ? /lacks the admin scope/
          : access.endsWith("one stream")
            ? /may not access stream/
            : /limited to particular streams/,
      );
    });
  }

  it("a token limited to a stream reaches that stream on every one-stream route", async () => {
    for (const [key] of tokenRoutes.filter(([, access]) => access.endsWith("one stream"))) {
      const [method = "", path = ""] = key.split(" ");
      const response = await send(
        method,
        path.replace(":streamId", LIMITED_STREAM_ID),
        bearer(TEST_TOKENS.oneStream),
      );
      expect(response.status, key).not.toBe(403);
      await response.body?.cancel();
    }
  });
});

describe("405 answers come from the app's routes", () => {
  const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
  const pathsAndMethods = new Map<string, string[]>();
  for (const key of Object.keys(EXPECTED_ACCESS)) {
    const [method = "", path = ""] = key.split(" ");
    pathsAndMethods.set(path, [...(pathsAndMethods.get(path) ?? []), method]);
  }

  for (const [path, served] of pathsAndMethods) {
    const open = served.every((method) => EXPECTED_ACCESS[`${method} ${path}`] === "open");
    for (const method of METHODS.filter((candidate) => !served.includes(candidate))) {
      it(`${method} ${path} → 405, Allow: ${served.join(", ")}`, async () => {
        const response = await send(method, concrete(path), bearer(TEST_TOKENS.reader));
        expect(response.headers.get("allow")).toBe(served.join(", "));
        const problem = await expectProblem(response, 405);
        expect(problemCode(problem)).toBe("method_not_allowed");
      });

      it(`${method} ${path} without a token → ${open ? "405: the path is open" : "401 first"}`, async () => {
        const response = await send(method, concrete(path), {});
        await expectProblem(response, open ? 405 : 401);
      });
    }
  }
});
