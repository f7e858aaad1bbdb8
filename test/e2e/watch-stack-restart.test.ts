import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { GlyphClient, type StoredEvent } from "../../client/index";
import { THROWAWAY_SETTINGS } from "../../scripts/local/embedded-postgres";
import { type LocalStack, type LocalStackOptions, startLocalStack } from "../../scripts/local/stack";
import { TEST_TOKENS, testAuthTokens } from "../support/test-tokens";

// Issue 13: "watch reconnects across a stack restart without gap or duplicate". The whole
// stack behind the client restarts, as `npm start` runs it (scripts/local/stack.ts):
// the Worker, the /sql endpoint it queries and PostgreSQL itself, stopped in that order
// and started again in the reverse one, PostgreSQL on the same data directory and port,
// the endpoint on its port and secret path, the Worker on its address. A client's
// watch() follows one stream all along while a writer appends before, during (its
// retries resend the same event ids) and after the restart: the watcher must yield
// 1..N, no gap, no duplicate, and the stream must hold exactly N events.
//
// The stack has a PostgreSQL cluster of its own (embedded, in a temporary directory),
// whatever the run's database is: the run's own cluster belongs to the global setup, and
// a TEST_DATABASE_URL server is shared with every other test file running at the time.

const EVENTS = 60;
/** The writer is this far along when the stack goes down. */
const RESTART_AT = 20;

let stack: LocalStack | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  await stack?.close();
  if (dataDir !== undefined) {
    await rm(dataDir, { recursive: true, force: true });
    await rm(`${dataDir}.log`, { force: true });
  }
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it(`watch yields 1..${EVENTS} without gap or duplicate across a restart of the Worker, the /sql endpoint and PostgreSQL, with a writer appending throughout`, async () => {
  dataDir = await mkdtemp(join(tmpdir(), "glyph-streams-restart-pg-"));
  // A clean (fast) shutdown writes everything out, so the cluster can skip fsync as a throwaway one does.
  const cluster = { dataDir, settings: { ...THROWAWAY_SETTINGS } };
  const first: LocalStackOptions = {
    database: { embedded: cluster },
    worker: { vars: { AUTH_TOKENS: testAuthTokens() } },
  };
  stack = await startLocalStack(first);
  const database = stack.embedded;
  const endpoint = stack.httpEndpoint;
  if (database === undefined || endpoint === undefined)
    throw new Error("no embedded database or /sql endpoint");
  const again: LocalStackOptions = {
    database: { embedded: { ...cluster, port: database.port } },
    httpEndpoint: { port: endpoint.port, path: endpoint.path },
    worker: { ...first.worker, port: Number(stack.worker.proxyUrl.port) },
  };
  const url = stack.worker.proxyUrl;

  const retry = { attempts: 100, baseMs: 50, maxMs: 250, timeoutMs: 5_000 };
  const watcher = new GlyphClient({ url, token: TEST_TOKENS.admin, retry });
  let failedAttempts = 0;
  const writer = new GlyphClient({
    url,
    token: TEST_TOKENS.admin,
    retry,
    fetch: async (input, init) => {
      try {
        const response = await fetch(input, init);
        if (response.status >= 500) failedAttempts++;
        return response;
      } catch (error) {
        failedAttempts++;
        throw error;
      }
    },
  });
  const streamId = crypto.randomUUID();
  await writer.append(
    streamId,
    [{ type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" }],
    {
      expectedVersion: "no_stream",
    },
  );

  const stop = new AbortController();
  const seen: StoredEvent[] = [];
  const reconnects: string[] = [];
  const watching = (async () => {
    for await (const event of watcher.watch(streamId, {
      signal: stop.signal,
      maxBackoffMs: 250,
      onReconnect: (reason) => reconnects.push(reason),
    })) {
      seen.push(event);
      if (event.version === EVENTS) return;
    }
  })();

  // One event per append, one after the other, until the stream holds EVENTS: each append's
  // retries (connection refused, 503, a lost answer) resend its event id, so none is written twice.
  let written = 1;
  const writing = (async () => {
    while (written < EVENTS) {
      const result = await writer.append(streamId, [
        { type: "context_updated", key: "n", value: written + 1 },
      ]);
      written = result.version;
      await sleep(10);
    }
  })();

  while (written < RESTART_AT) await sleep(10);
  const before = { written, seen: seen.length, serverPid: database.serverPid };
  const old = stack;
  stack = undefined;
  const downAt = Date.now();
  await old.close();
  stack = await startLocalStack(again);
  const after = { written, seen: seen.length, downMs: Date.now() - downAt };

  await writing;
  const timeout = setTimeout(() => stop.abort(), 30_000);
  await watching;
  clearTimeout(timeout);

  expect(seen.map((event) => event.version)).toEqual(Array.from({ length: EVENTS }, (_, i) => i + 1));
  expect(new Set(seen.map((event) => event.event_id)).size).toBe(EVENTS);
  expect((await writer.head(streamId)).version).toBe(EVENTS);
  // It was the same cluster (its data directory, not a new one) on the same port, in a new server process.
  expect(stack.embedded).toMatchObject({ dataDir, port: database.port, initialised: false });
  expect(stack.embedded?.serverPid).not.toBe(before.serverPid);
  expect(stack.httpEndpoint?.fetchEndpoint).toBe(endpoint.fetchEndpoint);
  expect(stack.worker.proxyUrl.toString()).toBe(url.toString());
  // The restart fell in the middle: events were written and watched before it, and written after it.
  expect(before.written).toBeGreaterThanOrEqual(RESTART_AT);
  expect(before.seen).toBeGreaterThan(1);
  expect(after.written).toBeLessThan(EVENTS);
  expect(reconnects.length).toBeGreaterThanOrEqual(1);
  // The writer met the stack down and retried.
  expect(failedAttempts).toBeGreaterThan(0);
  console.log(
    `watch across a stack restart: ${JSON.stringify({ events: EVENTS, before, after, failedAttempts, reconnects })}`,
  );
}, 120_000);
