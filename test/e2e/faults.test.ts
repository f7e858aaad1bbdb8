import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { httpEndpointToTestDatabase, openTestPool } from "../support/database";
import { adminAuthorization } from "../support/test-tokens";
import { startWorker } from "./worker-harness";

// Real HTTP into workerd, a database endpoint the test owns (the /sql endpoint the
// Worker's actors query over HTTP), and the database underneath: what happens to
// appends when the database goes away and comes back.

const pool = openTestPool(2);
afterAll(() => pool.end());

async function rowsFor(eventIds: string[]): Promise<number> {
  const result = await pool.query(
    "SELECT count(*)::int AS n FROM workflow_events WHERE event_id = ANY($1::uuid[])",
    [eventIds],
  );
  return (result.rows[0] as { n: number }).n;
}

function append(url: URL, streamId: string, body: unknown): Promise<Response> {
  return fetch(new URL(`/streams/${streamId}/events`, url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify(body),
  });
}

it("answers 503 quickly while the database is unreachable, writes nothing, and a retry appends exactly once", async () => {
  let endpoint = await httpEndpointToTestDatabase();
  const { port, path } = endpoint;
  const { url, stop } = await startWorker(inject("databaseWsProxy"), {
    DATABASE_TIMEOUT_MS: "3000",
    DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint,
  });
  try {
    const streamId = crypto.randomUUID();
    const first = await append(url, streamId, {
      events: [
        { event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } },
      ],
    });
    expect(first.status).toBe(201);

    await endpoint.close();
    const ids = [crypto.randomUUID(), crypto.randomUUID()];
    const body = {
      expected_version: 1,
      events: ids.map((event_id, index) => ({
        event_id,
        event: { type: "context_updated", key: `k${index}`, value: index },
      })),
    };
    const startedAt = Date.now();
    const refused = await append(url, streamId, body);
    const took = Date.now() - startedAt;
    expect(refused.status).toBe(503);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(refused.headers.get("retry-after")).toBe("1");
    expect((await refused.json()) as { detail: string }).toMatchObject({
      detail: expect.stringMatching(/retry/),
    });
    expect(took).toBeLessThan(10_000);
    expect(await rowsFor(ids)).toBe(0);

    endpoint = await httpEndpointToTestDatabase({ port, path });
    const retried = await append(url, streamId, body);
    expect(retried.status).toBe(201);
    expect(await retried.json()).toMatchObject({ versions: [2, 3], event_ids: ids });
    const again = await append(url, streamId, body);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ versions: [2, 3], idempotent: true });
    expect(await rowsFor(ids)).toBe(2);
  } finally {
    await stop();
    await endpoint.close();
  }
});

/**
 * An HTTP endpoint in front of `target` that can start taking requests and answering
 * none: a database that accepts statements and hangs.
 */
async function hangableEndpoint(target: string) {
  let hanging = false;
  const held = new Set<ServerResponse>();
  const server = createServer(async (request, response) => {
    if (hanging) {
      held.add(response);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const headers = Object.entries(request.headers).flatMap(([name, value]) =>
      typeof value === "string" && !["host", "content-length", "connection"].includes(name)
        ? [[name, value]]
        : [],
    ) as Array<[string, string]>;
    const answer = await fetch(target, {
      method: request.method ?? "POST",
      headers,
      body: Buffer.concat(chunks),
    });
    const body = Buffer.from(await answer.arrayBuffer());
    response.writeHead(answer.status, {
      "content-type": answer.headers.get("content-type") ?? "application/json",
    });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${new URL(target).pathname}`,
    hang: (on: boolean) => {
      hanging = on;
    },
    close: async () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

it("answers 503 within DATABASE_TIMEOUT_MS when the database takes statements and never answers, warm or cold", async () => {
  const endpoint = await httpEndpointToTestDatabase();
  const hangable = await hangableEndpoint(endpoint.fetchEndpoint);
  const { url, stop } = await startWorker(inject("databaseWsProxy"), {
    DATABASE_TIMEOUT_MS: "1500",
    DATABASE_HTTP_ENDPOINT: hangable.url,
  });
  try {
    const streamId = crypto.randomUUID();
    const started = await append(url, streamId, {
      events: [
        { event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } },
      ],
    });
    expect(started.status).toBe(201);

    hangable.hang(true);
    const ids = [crypto.randomUUID()];
    const body = {
      expected_version: 1,
      events: [{ event_id: ids[0], event: { type: "context_updated", key: "k", value: 1 } }],
    };
    // The warm actor's one statement, bounded by its own fetch.
    let startedAt = Date.now();
    const warm = await append(url, streamId, body);
    expect(warm.status).toBe(503);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    // A cold actor's load, bounded as a whole.
    startedAt = Date.now();
    const cold = await fetch(new URL(`/streams/${crypto.randomUUID()}/state`, url), {
      headers: adminAuthorization,
    });
    expect(cold.status).toBe(503);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(await rowsFor(ids)).toBe(0);

    hangable.hang(false);
    const retried = await append(url, streamId, body);
    expect(retried.status).toBe(201);
    expect(await retried.json()).toMatchObject({ versions: [2] });
    expect(await rowsFor(ids)).toBe(1);
  } finally {
    await stop();
    await hangable.close();
    await endpoint.close();
  }
});

it("refuses GET /watch?after=now with a 503 problem when the feed's head cannot be read, and opens once it can", async () => {
  const endpoint = await httpEndpointToTestDatabase();
  const { port, path } = endpoint;
  const { url, stop } = await startWorker(inject("databaseWsProxy"), {
    DATABASE_TIMEOUT_MS: "1500",
    DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint,
  });
  const open = () => {
    const target = new URL("/watch?after=now", url);
    target.protocol = "ws:";
    const socket = new WebSocket(target, [], { headers: adminAuthorization });
    return new Promise<{ status: number; type?: string | undefined; body: string; socket: WebSocket }>(
      (resolve, reject) => {
        socket.once("open", () => resolve({ status: 101, body: "", socket }));
        socket.once("error", reject);
        socket.once("unexpected-response", (_request, response) => {
          let body = "";
          response.on("data", (chunk: Buffer) => {
            body += chunk.toString();
          });
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              type: response.headers["content-type"],
              body,
              socket,
            }),
          );
        });
      },
    );
  };
  let reopened: Awaited<ReturnType<typeof httpEndpointToTestDatabase>> | undefined;
  try {
    await endpoint.close();
    const refused = await open();
    expect(refused.status).toBe(503);
    expect(refused.type).toBe("application/problem+json");
    expect(JSON.parse(refused.body)).toMatchObject({ detail: expect.stringMatching(/retry/) });

    reopened = await httpEndpointToTestDatabase({ port, path });
    const opened = await open();
    expect(opened.status).toBe(101);
    const first = await new Promise<unknown>((resolve) =>
      opened.socket.once("message", (data) => resolve(JSON.parse(String(data)))),
    );
    expect(first).toMatchObject({ type: "started", checkpoint: expect.any(String) });
    opened.socket.close();
  } finally {
    await stop();
    await reopened?.close();
  }
});

it("serves exactly the same state after the whole stack restarts", async () => {
  const endpoint = await httpEndpointToTestDatabase();
  const database = { DATABASE_HTTP_ENDPOINT: endpoint.fetchEndpoint };
  try {
    const streamId = crypto.randomUUID();
    let { url, stop } = await startWorker(inject("databaseWsProxy"), database);
    let expected: unknown;
    try {
      const events = [
        { event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v7" } },
        ...Array.from({ length: 72 }, (_, index) => ({
          event: { type: "context_updated", key: `key${index % 9}`, value: { index, text: "é✓" } },
        })),
        { event: { type: "step_activated", step_id: "review", assigned_to: [crypto.randomUUID()] } },
      ];
      for (let offset = 0; offset < events.length; offset += 13) {
        const response = await append(url, streamId, { events: events.slice(offset, offset + 13) });
        expect(response.status).toBe(201);
      }
      const before = await fetch(new URL(`/streams/${streamId}/state`, url), { headers: adminAuthorization });
      expect(before.status).toBe(200);
      expected = await before.json();
      expect(expected).toMatchObject({ version: 74 });
    } finally {
      await stop();
    }
    ({ url, stop } = await startWorker(inject("databaseWsProxy"), database));
    try {
      const after = await fetch(new URL(`/streams/${streamId}/state`, url), { headers: adminAuthorization });
      expect(after.status).toBe(200);
      expect(await after.json()).toEqual(expected);
      const next = await append(url, streamId, {
        expected_version: 74,
        events: [{ event: { type: "step_completed", step_id: "review", result: { ok: true } } }],
      });
      expect(next.status).toBe(201);
      expect(await next.json()).toMatchObject({ versions: [75] });
    } finally {
      await stop();
    }
  } finally {
    await endpoint.close();
  }
});
