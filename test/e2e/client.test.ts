import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  ConditionFailed,
  ConflictError,
  Forbidden,
  GlyphClient,
  InvalidRequest,
  NotFound,
  RuleViolation,
  type StoredEvent,
  Unauthorized,
} from "../../client/index";
import { startLocalWorker } from "../../scripts/local/worker";
import { httpEndpointToTestDatabase, openTestPool } from "../support/database";
import { TEST_TOKENS, testAuthTokens } from "../support/test-tokens";
import { type RunningWorker, startWorker } from "./worker-harness";

// The client (client/) against the real Worker over HTTP and WebSocket (issue 13).

const pool = openTestPool(2);
let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"));
});
afterAll(async () => {
  await worker.stop();
  await pool.end();
});

const admin = () => new GlyphClient({ url: worker.url, token: TEST_TOKENS.admin });
const started = () => ({
  type: "workflow_started" as const,
  workflow_id: crypto.randomUUID(),
  config_version: "v1",
});
const context = (key: string, value: number) => ({ type: "context_updated" as const, key, value });

async function rowsFor(eventIds: string[]): Promise<number> {
  const result = await pool.query(
    "SELECT count(*)::int AS n FROM workflow_events WHERE event_id = ANY($1::uuid[])",
    [eventIds],
  );
  return (result.rows[0] as { n: number }).n;
}

it("retries an append across a database outage with the same event ids: written exactly once", async () => {
  let endpoint = await httpEndpointToTestDatabase();
  // The port, and the endpoint's secret path where it has one: where the Worker looks for it again.
  const { path } = endpoint as unknown as { path?: string };
  const reopen = { port: endpoint.port, ...(path === undefined ? {} : { path }) };
  const { url, stop } = await startWorker(inject("databaseWsProxy"), {
    DATABASE_TIMEOUT_MS: "2000",
    DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint,
  });
  try {
    const statuses: number[] = [];
    const bodies: string[] = [];
    const client = new GlyphClient({
      url,
      token: TEST_TOKENS.admin,
      retry: { attempts: 40, baseMs: 100, maxMs: 500 },
      fetch: async (input, init) => {
        if (typeof init?.body === "string") bodies.push(init.body);
        const response = await fetch(input, init);
        statuses.push(response.status);
        return response;
      },
    });
    const streamId = crypto.randomUUID();
    await client.append(streamId, [started()], { expectedVersion: "no_stream" });

    await endpoint.close();
    const appending = client.append(streamId, [context("a", 1), context("b", 2)], { expectedVersion: 1 });
    // Let it meet the outage at least once before the database comes back.
    const deadline = Date.now() + 20_000;
    while (!statuses.slice(1).includes(503) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(statuses.slice(1)).toContain(503);
    endpoint = await httpEndpointToTestDatabase(reopen);
    const result = await appending;

    expect(result.versions).toEqual([2, 3]);
    const sent = bodies
      .slice(1)
      .map((body) => (JSON.parse(body) as { events: { event_id: string }[] }).events);
    expect(sent.length).toBeGreaterThan(1);
    for (const events of sent) expect(events.map((e) => e.event_id)).toEqual(result.event_ids);
    expect(await rowsFor(result.event_ids)).toBe(2);
    expect((await client.head(streamId)).version).toBe(3);
  } finally {
    await stop();
    await endpoint.close();
  }
});

it("handle: 32 concurrent deciders on one stream lose no update", async () => {
  const client = admin();
  const streamId = crypto.randomUUID();
  await client.append(streamId, [started()]);
  const results = await Promise.all(
    Array.from({ length: 32 }, () =>
      client.handle(streamId, (state) => {
        const count = state.context.count;
        return [context("count", (typeof count === "number" ? count : 0) + 1)];
      }),
    ),
  );
  expect(results.every((result) => result !== null)).toBe(true);
  const { version, state } = await client.state(streamId);
  expect(version).toBe(33);
  expect(state.context.count).toBe(32);
  const versions = results.flatMap((result) => result?.versions ?? []).sort((a, b) => a - b);
  expect(versions).toEqual(Array.from({ length: 32 }, (_, i) => i + 2));
});

it("handle starts a stream that does not exist yet, and appends nothing when decide returns no events", async () => {
  const client = admin();
  const streamId = crypto.randomUUID();
  const first = await client.handle(streamId, (state, version) =>
    version === 0 && state.status === "pending" ? [started()] : [],
  );
  expect(first?.versions).toEqual([1]);
  expect(await client.handle(streamId, () => [])).toBeNull();
  expect((await client.head(streamId)).status).toBe("running");
});

it("events, state at a version, head and list page through the API", async () => {
  const client = admin();
  const streamId = crypto.randomUUID();
  const type = `client${crypto.randomUUID().slice(0, 8)}`;
  await client.append(streamId, [started(), ...Array.from({ length: 24 }, (_, i) => context("k", i + 1))], {
    streamType: type,
  });
  const forward: number[] = [];
  for await (const event of client.events(streamId, { limit: 7 })) forward.push(event.version);
  expect(forward).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  const backward: number[] = [];
  for await (const event of client.events(streamId, { direction: "backward", limit: 10, from: 12 }))
    backward.push(event.version);
  expect(backward).toEqual(Array.from({ length: 12 }, (_, i) => 12 - i));
  expect((await client.state(streamId, { at: 5 })).state.context.k).toBe(4);
  expect(await client.head(streamId)).toMatchObject({ version: 25, stream_type: type, status: "running" });

  const others = Array.from({ length: 4 }, () => crypto.randomUUID());
  for (const id of others) await client.append(id, [started()], { streamType: type });
  const listed: string[] = [];
  for await (const head of client.list({ type, status: "running", limit: 2 })) listed.push(head.stream_id);
  expect(listed.sort()).toEqual([streamId, ...others].sort());
});

describe("typed errors", () => {
  it("ConflictError carries expected and actual", async () => {
    const client = admin();
    const streamId = crypto.randomUUID();
    await client.append(streamId, [started()]);
    const error = await client
      .append(streamId, [context("x", 1)], { expectedVersion: 5 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({ status: 409, expected: 5, actual: 1 });
    // The turn it carries is taken back with the retry (AppendOptions.turn).
    const { turn } = error as ConflictError;
    expect(turn).toMatch(/^\d+\.[0-9a-f]{16}$/);
    const retried = await client.append(streamId, [context("x", 1)], {
      expectedVersion: 1,
      ...(turn === undefined ? {} : { turn }),
    });
    expect(retried.version).toBe(2);
  });

  it("RuleViolation carries the reducer's sentence; ConditionFailed the state it met", async () => {
    const client = admin();
    const streamId = crypto.randomUUID();
    await client.append(streamId, [started()]);
    const rule = await client.append(streamId, [started()]).catch((e: unknown) => e);
    expect(rule).toBeInstanceOf(RuleViolation);
    expect((rule as RuleViolation).message.length).toBeGreaterThan(10);
    const condition = await client
      .append(streamId, [context("x", 1)], { if: { status: "completed" } })
      .catch((e: unknown) => e);
    expect(condition).toBeInstanceOf(ConditionFailed);
    expect(condition).toMatchObject({ status: 412, version: 1, unmet: ["/status"] });
  });

  it("Unauthorized, Forbidden, NotFound and InvalidRequest", async () => {
    const streamId = crypto.randomUUID();
    const nobody = new GlyphClient({ url: worker.url, token: "not-a-token-at-all-0123456789abcdef" });
    await expect(nobody.head(streamId)).rejects.toBeInstanceOf(Unauthorized);
    const reader = new GlyphClient({ url: worker.url, token: TEST_TOKENS.reader });
    await expect(reader.append(streamId, [started()])).rejects.toBeInstanceOf(Forbidden);
    await expect(admin().state(streamId)).rejects.toBeInstanceOf(NotFound);
    await expect(admin().append(streamId, [context("", 1)])).rejects.toBeInstanceOf(InvalidRequest);
  });
});

it("watch reconnects across a Worker restart on the same address without gap or duplicate", async () => {
  const database = {
    DATABASE_URL: inject("databaseUrl"),
    DATABASE_WS_PROXY: inject("databaseWsProxy"),
    DATABASE_HTTP_ENDPOINT: inject("databaseHttpEndpoint"),
    AUTH_TOKENS: testAuthTokens(),
  };
  let local = await startLocalWorker({ vars: database });
  const port = Number(local.proxyUrl.port);
  const url = local.proxyUrl;
  const client = new GlyphClient({ url, token: TEST_TOKENS.admin, retry: { baseMs: 50, maxMs: 300 } });
  const streamId = crypto.randomUUID();
  const stop = new AbortController();
  const seen: StoredEvent[] = [];
  let reconnects = 0;
  try {
    await client.append(streamId, [started(), ...Array.from({ length: 9 }, (_, i) => context("k", i))]);
    const watching = (async () => {
      for await (const event of client.watch(streamId, {
        signal: stop.signal,
        onReconnect: () => {
          reconnects++;
        },
      })) {
        seen.push(event);
        if (event.version === 40) return;
      }
    })();
    const waitFor = async (version: number) => {
      const deadline = Date.now() + 30_000;
      while ((seen.at(-1)?.version ?? 0) < version && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await waitFor(10);
    await client.append(
      streamId,
      Array.from({ length: 10 }, (_, i) => context("live", i)),
    );
    await waitFor(20);
    await local.stop();
    local = await startLocalWorker({ vars: database, port });
    // Appended while the watcher is away or reconnecting: it must get them from the catch-up.
    for (let batch = 0; batch < 4; batch++) {
      await client.append(
        streamId,
        Array.from({ length: 5 }, (_, i) => context(`after${batch}`, i)),
      );
    }
    await watching;
    expect(seen.map((event) => event.version)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(reconnects).toBeGreaterThanOrEqual(1);
  } finally {
    stop.abort();
    await local.stop();
  }
});

it("watch stops when its signal aborts, and throws Unauthorized for a bad token", async () => {
  const streamId = crypto.randomUUID();
  await admin().append(streamId, [started()]);
  const stop = new AbortController();
  const versions: number[] = [];
  const watching = (async () => {
    for await (const event of admin().watch(streamId, { signal: stop.signal })) {
      versions.push(event.version);
      if (event.version === 1) stop.abort();
    }
  })();
  await watching;
  expect(versions).toEqual([1]);

  const nobody = new GlyphClient({ url: worker.url, token: "not-a-token-at-all-0123456789abcdef" });
  await expect(
    (async () => {
      for await (const _ of nobody.watch(streamId)) break;
    })(),
  ).rejects.toBeInstanceOf(Unauthorized);
});

it("feed pages through the global feed by stream type; watchAll follows it live from a checkpoint", async () => {
  const client = admin();
  const streamType = `feed${crypto.randomUUID().slice(0, 8)}`;
  const streams = [crypto.randomUUID(), crypto.randomUUID()];
  for (const id of streams) {
    await client.append(id, [started(), context("k", 1), context("k", 2)], { streamType });
  }
  const paged: string[] = [];
  for await (const event of client.feed({ streamType, limit: 2 }))
    paged.push(`${event.stream_id}:${event.version}`);
  expect(paged).toEqual(streams.flatMap((id) => [1, 2, 3].map((version) => `${id}:${version}`)));
  const firstThree: string[] = [];
  let checkpoint: string | undefined;
  for await (const event of client.feed({ streamType, limit: 3 })) {
    firstThree.push(event.event_id);
    checkpoint = event.checkpoint;
    if (firstThree.length === 3) break;
  }

  const stop = new AbortController();
  const live: string[] = [];
  const watching = (async () => {
    for await (const event of client.watchAll({
      streamType,
      ...(checkpoint === undefined ? {} : { after: checkpoint }),
      signal: stop.signal,
    })) {
      live.push(`${event.stream_id}:${event.version}`);
      if (live.length === 5) stop.abort();
    }
  })();
  await client.append(streams[0] ?? "", [context("k", 3), context("k", 4)]);
  await watching;
  expect(live).toEqual([
    ...[1, 2, 3].map((version) => `${streams[1]}:${version}`),
    `${streams[0]}:4`,
    `${streams[0]}:5`,
  ]);
});

it('watchAll({after: "now"}) yields only what is committed after it opened', async () => {
  const client = admin();
  const streamType = `now${crypto.randomUUID().slice(0, 8)}`;
  const streamId = crypto.randomUUID();
  await client.append(streamId, [started(), context("k", 1)], { streamType });
  // What came before is visible in the feed before the watch opens.
  const before: number[] = [];
  for await (const event of client.feed({ streamType })) before.push(event.version);
  expect(before).toEqual([1, 2]);

  const stop = new AbortController();
  const live: number[] = [];
  let opened: () => void = () => undefined;
  const caughtUp = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const watching = (async () => {
    for await (const event of client.watchAll({
      streamType,
      after: "now",
      signal: stop.signal,
      onCaughtUp: () => opened(),
    })) {
      live.push(event.version);
      if (live.length === 2) stop.abort();
    }
  })();
  await caughtUp;
  await client.append(streamId, [context("k", 2), context("k", 3)]);
  await watching;
  expect(live).toEqual([3, 4]);
});
