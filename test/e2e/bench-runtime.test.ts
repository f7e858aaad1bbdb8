import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { type LeanWorker, startLeanWorker } from "../../bench/lib/lean-worker";
import { startTrivialWorker } from "../../bench/lib/stack";
import { adminAuthorization, testAuthTokens } from "../support/test-tokens";

// The runtime `npm run bench` measures the Worker in (bench/lib/lean-worker.ts): the
// bundle `wrangler deploy` builds, run by Miniflare through a socket straight to the
// Worker. Nothing else runs it, so this checks that it is the whole product: the API
// over the test database, the inspector's files through the ASSETS binding, the API's
// 404 for anything else; and that the benchmark's floor, the trivial Worker, answers.

const ROOT = new URL("../../", import.meta.url);
let worker: LeanWorker;

beforeAll(async () => {
  worker = await startLeanWorker({
    config: new URL("wrangler.toml", ROOT).pathname,
    vars: {
      DATABASE_URL: inject("databaseUrl"),
      DATABASE_WS_PROXY: inject("databaseWsProxy"),
      DATABASE_HTTP_ENDPOINT: inject("databaseHttpEndpoint"),
      AUTH_TOKENS: testAuthTokens(),
    },
  });
}, 120_000);
afterAll(() => worker?.stop());

it("serves appends and reads over the database, the inspector's files, and problem+json for the rest", async () => {
  const streamId = crypto.randomUUID();
  const appended = await fetch(new URL(`/streams/${streamId}/events`, worker.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify({
      events: [
        { event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } },
      ],
    }),
  });
  expect(appended.status).toBe(201);
  expect(await appended.json()).toMatchObject({ stream_id: streamId, version: 1 });

  const state = await fetch(new URL(`/streams/${streamId}/state`, worker.url), {
    headers: adminAuthorization,
  });
  expect(state.status).toBe(200);
  expect(await state.json()).toMatchObject({ version: 1 });

  const page = await fetch(new URL("/inspect/", worker.url));
  expect(page.status).toBe(200);
  expect(page.headers.get("content-type")).toContain("text/html");
  await page.arrayBuffer();

  const missing = await fetch(new URL("/inspect/nope.js", worker.url), { headers: adminAuthorization });
  expect(missing.status).toBe(404);
  expect(missing.headers.get("content-type")).toContain("application/problem+json");
  await missing.arrayBuffer();
});

it("runs the benchmark's trivial Worker the same way", async () => {
  const trivial = await startTrivialWorker();
  try {
    const response = await fetch(trivial.url);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("ok");
  } finally {
    await trivial.stop();
  }
}, 120_000);
