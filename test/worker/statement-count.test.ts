import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { StreamActor } from "../../src/actor/stream-actor";
import { contextUpdated, started, stepCompleted } from "../support/event-builders";
import {
  type AppendBody,
  type AppendResult,
  api,
  appendEvents,
  expectJson,
  problemCode,
} from "../support/http-client";

// Database statements per request, counted by the actor's counting layer around the
// driver (every statement its store sends is one round trip): a warm append is one
// statement with or without event ids, a cold actor loads with one, and what the actor
// can answer from what it holds (a refusal without event ids, a repeat it remembers)
// costs none.

const bindings = env as unknown as Env;
const actorFor = (streamId: string) => bindings.STREAM_ACTOR.get(bindings.STREAM_ACTOR.idFromName(streamId));

async function statements(streamId: string): Promise<number> {
  return (await actorFor(streamId).stats()).statements;
}

/** The statements the actor sent while `request` ran, and the request's response. */
async function counted(streamId: string, request: () => Promise<Response>) {
  const before = await statements(streamId);
  const response = await request();
  const text = await response.text();
  return { status: response.status, body: text, statements: (await statements(streamId)) - before };
}

const append = (streamId: string, body: AppendBody) => () => appendEvents(streamId, body);
const get = (path: string) => () => api(path);

/** Throws the actor away with everything in memory, as an eviction does. */
async function evict(streamId: string): Promise<void> {
  await runInDurableObject(actorFor(streamId), (_instance: StreamActor, state: DurableObjectState) => {
    state.abort("evicted by the test");
  }).catch(() => undefined);
}

/** A stream with a started workflow and one more event, its actor warm. */
async function warmStream(): Promise<string> {
  const streamId = crypto.randomUUID();
  const created = await appendEvents(streamId, {
    events: [{ event: started() }, { event: contextUpdated("a", 1) }],
  });
  expect(created.status).toBe(201);
  await created.body?.cancel();
  return streamId;
}

describe("a warm append is one statement", () => {
  it("without event ids", async () => {
    const streamId = await warmStream();
    const result = await counted(streamId, append(streamId, { events: [{ event: contextUpdated("b", 2) }] }));
    expect(result).toMatchObject({ status: 201, statements: 1 });
  });

  it("with event ids and an exact expected version", async () => {
    const streamId = await warmStream();
    const result = await counted(
      streamId,
      append(streamId, {
        expected_version: 2,
        events: [
          { event: contextUpdated("b", 2), event_id: crypto.randomUUID() },
          { event: contextUpdated("c", 3), event_id: crypto.randomUUID() },
        ],
      }),
    );
    expect(result).toMatchObject({ status: 201, statements: 1 });
  });

  it("with an id stored by another stream: one statement writes nothing and finds it (409)", async () => {
    const eventId = crypto.randomUUID();
    const first = await warmStream();
    const owner = await counted(
      first,
      append(first, { events: [{ event: contextUpdated("b", 2), event_id: eventId }] }),
    );
    expect(owner).toMatchObject({ status: 201, statements: 1 });
    const streamId = await warmStream();
    const reused = await counted(
      streamId,
      append(streamId, { events: [{ event: contextUpdated("b", 2), event_id: eventId }] }),
    );
    expect(reused).toMatchObject({ status: 409, statements: 1 });
    expect(problemCode(JSON.parse(reused.body))).toBe("idempotency_conflict");
  });
});

describe("an idempotent repeat", () => {
  it("of an append the actor made is answered from its memory of recent ids: no statement", async () => {
    const streamId = await warmStream();
    const body: AppendBody = {
      expected_version: 2,
      events: [{ event: contextUpdated("b", 2), event_id: crypto.randomUUID() }],
    };
    expect(await counted(streamId, append(streamId, body))).toMatchObject({ status: 201, statements: 1 });
    const repeat = await counted(streamId, append(streamId, body));
    expect(repeat).toMatchObject({ status: 200, statements: 0 });
    expect(JSON.parse(repeat.body)).toMatchObject({ idempotent: true, versions: [3] });
  });

  it("after an eviction is the load and one statement, which writes nothing", async () => {
    const streamId = await warmStream();
    const body: AppendBody = { events: [{ event: contextUpdated("b", 2), event_id: crypto.randomUUID() }] };
    expect(await counted(streamId, append(streamId, body))).toMatchObject({ status: 201, statements: 1 });
    await evict(streamId);
    const repeat = await counted(streamId, append(streamId, body));
    expect(repeat).toMatchObject({ status: 200, statements: 2 });
    expect(JSON.parse(repeat.body)).toMatchObject({ idempotent: true, versions: [3] });
    // Now remembered: the next repeat costs nothing.
    expect(await counted(streamId, append(streamId, body))).toMatchObject({ status: 200, statements: 0 });
  });

  it("whose expected version is stale by now is still a repeat: one lookup", async () => {
    const streamId = await warmStream();
    const body: AppendBody = {
      expected_version: 2,
      events: [{ event: contextUpdated("b", 2), event_id: crypto.randomUUID() }],
    };
    expect(await counted(streamId, append(streamId, body))).toMatchObject({ status: 201, statements: 1 });
    await evict(streamId);
    // Warm the actor again with a read (the load), then repeat: the cache refuses version 2, the lookup finds the ids.
    expect(await counted(streamId, get(`/streams/${streamId}/state`))).toMatchObject({
      status: 200,
      statements: 1,
    });
    const repeat = await counted(streamId, append(streamId, body));
    expect(repeat).toMatchObject({ status: 200, statements: 1 });
    expect(JSON.parse(repeat.body)).toMatchObject({ idempotent: true, versions: [3] });
  });
});

describe("a cold actor", () => {
  it("serves its first read with one statement: head, newest snapshot and tail", async () => {
    const streamId = crypto.randomUUID();
    // 77 events: a snapshot at 55 (the batch that crossed 50) and a tail of 22.
    const events = [
      { event: started() },
      ...Array.from({ length: 54 }, (_, i) => ({ event: contextUpdated(`k${i}`, i) })),
    ];
    expect((await appendEvents(streamId, { events })).status).toBe(201);
    const tail = Array.from({ length: 22 }, (_, i) => ({ event: contextUpdated(`t${i}`, i) }));
    expect((await appendEvents(streamId, { events: tail })).status).toBe(201);
    const warm = await expectJson<{ version: number }>(await api(`/streams/${streamId}/state`), 200);
    await evict(streamId);
    const cold = await counted(streamId, get(`/streams/${streamId}/state`));
    expect(cold).toMatchObject({ status: 200, statements: 1 });
    expect(JSON.parse(cold.body)).toEqual(warm);
    expect((await actorFor(streamId).stats()).loads).toBe(1);
  });

  it("creates a stream with one statement: a first event that starts a workflow needs no load", async () => {
    const streamId = crypto.randomUUID();
    const result = await counted(
      streamId,
      append(streamId, {
        expected_version: "no_stream",
        events: [{ event: started(), event_id: crypto.randomUUID() }],
      }),
    );
    expect(result).toMatchObject({ status: 201, statements: 1 });
  });

  it("appends to an existing stream with the load and one statement", async () => {
    const streamId = await warmStream();
    await evict(streamId);
    const result = await counted(streamId, append(streamId, { events: [{ event: contextUpdated("b", 2) }] }));
    expect(result).toMatchObject({ status: 201, statements: 2 });
  });

  it("that guessed a new stream wrong loads and refuses: nothing is written", async () => {
    const streamId = await warmStream();
    await evict(streamId);
    const result = await counted(streamId, append(streamId, { events: [{ event: started() }] }));
    // The guess (one statement that writes nothing), the load; the refusal needs no more.
    expect(result).toMatchObject({ status: 422, statements: 2 });
    const head = await expectJson<{ version: number }>(await api(`/streams/${streamId}`), 200);
    expect(head.version).toBe(2);
  });
});

describe("refusals", () => {
  it("a wrong exact version without event ids is answered from the cache: no statement", async () => {
    const streamId = await warmStream();
    const result = await counted(
      streamId,
      append(streamId, { expected_version: 1, events: [{ event: contextUpdated("b", 2) }] }),
    );
    expect(result.status).toBe(409);
    expect(JSON.parse(result.body)).toMatchObject({ expected: 1, actual: 2 });
    expect(result.statements).toBe(0);
  });

  it("a wrong exact version with event ids looks them up (it may be a retry): one statement", async () => {
    const streamId = await warmStream();
    const result = await counted(
      streamId,
      append(streamId, {
        expected_version: 1,
        events: [{ event: contextUpdated("b", 2), event_id: crypto.randomUUID() }],
      }),
    );
    expect(result).toMatchObject({ status: 409, statements: 1 });
  });

  it("events the workflow rules refuse (422): no statement without ids, one with", async () => {
    const streamId = await warmStream();
    const withoutIds = await counted(
      streamId,
      append(streamId, { events: [{ event: stepCompleted("nowhere") }] }),
    );
    expect(withoutIds).toMatchObject({ status: 422, statements: 0 });
    const withIds = await counted(
      streamId,
      append(streamId, { events: [{ event: stepCompleted("nowhere"), event_id: crypto.randomUUID() }] }),
    );
    expect(withIds).toMatchObject({ status: 422, statements: 1 });
    expect(problemCode(JSON.parse(withIds.body))).toBe(problemCode(JSON.parse(withoutIds.body)));
  });
});

describe("reads", () => {
  it("warm: the state from the cache, the head, a page of events and the state at a version with one statement each", async () => {
    const streamId = await warmStream();
    expect(await counted(streamId, get(`/streams/${streamId}/state`))).toMatchObject({
      status: 200,
      statements: 0,
    });
    expect(await counted(streamId, get(`/streams/${streamId}`))).toMatchObject({
      status: 200,
      statements: 1,
    });
    expect(await counted(streamId, get(`/streams/${streamId}/events`))).toMatchObject({
      status: 200,
      statements: 1,
    });
    expect(await counted(streamId, get(`/streams/${streamId}/state?at=1`))).toMatchObject({
      status: 200,
      statements: 1,
    });
  });
});

it("a group commit writes its whole batch with one statement", async () => {
  const streamId = await warmStream();
  const before = await actorFor(streamId).stats();
  const responses = await Promise.all(
    Array.from({ length: 32 }, (_, i) =>
      appendEvents(streamId, {
        events: [{ event: contextUpdated(`g${i}`, i), event_id: crypto.randomUUID() }],
      }),
    ),
  );
  for (const response of responses) await expectJson<AppendResult>(response, 201);
  const after = await actorFor(streamId).stats();
  expect(after.statements - before.statements).toBe(after.transactions - before.transactions);
});
