import { runInDurableObject, SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { StreamActor } from "../../src/actor/stream-actor";
import type { WorkflowEvent } from "../../src/events/types";
import { applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import { contextUpdated, started } from "../support/event-builders";
import { adminAuthorization } from "../support/test-tokens";

// The stream actor through real HTTP requests into the Worker: group commit,
// optimistic concurrency, and a cold start after eviction.

const bindings = env as unknown as Env;
const actorFor = (streamId: string) => bindings.STREAM_ACTOR.get(bindings.STREAM_ACTOR.idFromName(streamId));

function append(streamId: string, body: unknown): Promise<Response> {
  return SELF.fetch(`http://glyph.test/streams/${streamId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify(body),
  });
}

async function storedVersions(streamId: string): Promise<{ versions: number[]; ids: string[] }> {
  const response = await SELF.fetch(`http://glyph.test/streams/${streamId}/events?limit=1000`, {
    headers: adminAuthorization,
  });
  const page = (await response.json()) as { events: Array<{ version: number; event_id: string }> };
  return { versions: page.events.map((e) => e.version), ids: page.events.map((e) => e.event_id) };
}

interface AppendBody {
  versions: number[];
  event_ids: string[];
  idempotent: boolean;
}

it("group-commits 64 concurrent appends with expected version any", async () => {
  const streamId = crypto.randomUUID();
  expect((await append(streamId, { events: [{ event: started() }] })).status).toBe(201);
  const responses = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      append(streamId, { events: [{ event: contextUpdated(`k${i}`, i) }] }),
    ),
  );
  const bodies: AppendBody[] = [];
  for (const response of responses) {
    expect(response.status).toBe(201);
    bodies.push((await response.json()) as AppendBody);
  }
  const acknowledged = bodies.flatMap((body) => body.versions).sort((a, b) => a - b);
  expect(acknowledged).toEqual(Array.from({ length: 64 }, (_, i) => i + 2));
  const stored = await storedVersions(streamId);
  expect(stored.versions).toEqual(Array.from({ length: 65 }, (_, i) => i + 1));
  const ackIds = new Set(bodies.flatMap((body) => body.event_ids));
  expect(stored.ids.filter((id) => ackIds.has(id))).toHaveLength(64);
  const stats = await actorFor(streamId).stats();
  expect(stats.requests).toBe(65);
  expect(stats.transactions).toBeLessThan(stats.requests);
});

it("lets exactly the appends whose expected version matched win, and answers the rest 409", async () => {
  const streamId = crypto.randomUUID();
  expect((await append(streamId, { events: [{ event: started() }] })).status).toBe(201);
  // Every request claims to follow version 1: exactly one can.
  const sameExpected = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      append(streamId, { expected_version: 1, events: [{ event: contextUpdated(`same${i}`, i) }] }),
    ),
  );
  const statuses = sameExpected.map((response) => response.status);
  expect(statuses.filter((status) => status === 201)).toHaveLength(1);
  expect(statuses.filter((status) => status === 409)).toHaveLength(63);
  for (const response of sameExpected.filter((r) => r.status === 409)) {
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ expected: 1, actual: 2 });
  }
  // Requests for versions 2..65 in random order: those that meet their version win.
  const order = Array.from({ length: 64 }, (_, i) => i + 2).sort(() => Math.random() - 0.5);
  const chained = await Promise.all(
    order.map((expected) =>
      append(streamId, {
        expected_version: expected,
        events: [{ event: contextUpdated(`c${expected}`, expected) }],
      }),
    ),
  );
  const winners: number[] = [];
  for (const [index, response] of chained.entries()) {
    const expected = order[index] ?? -1;
    if (response.status === 201) {
      const body = (await response.json()) as AppendBody;
      expect(body.versions).toEqual([expected + 1]);
      winners.push(expected);
    } else {
      expect(response.status).toBe(409);
      const problem = (await response.json()) as { expected: number; actual: number };
      expect(problem.expected).toBe(expected);
      expect(problem.actual).not.toBe(expected);
    }
  }
  winners.sort((a, b) => a - b);
  expect(winners.length).toBeGreaterThan(0);
  expect(winners).toEqual(Array.from({ length: winners.length }, (_, i) => i + 2));
  const stored = await storedVersions(streamId);
  expect(stored.versions).toEqual(Array.from({ length: 2 + winners.length }, (_, i) => i + 1));
});

it("serves exactly the state it had before the actor was thrown away, rebuilt from snapshot and tail", async () => {
  const streamId = crypto.randomUUID();
  const events: WorkflowEvent[] = [
    started(),
    ...Array.from({ length: 76 }, (_, i) => contextUpdated(`k${i % 7}`, i)),
  ];
  for (let offset = 0; offset < events.length; offset += 11) {
    const batch = events.slice(offset, offset + 11).map((event) => ({ event }));
    expect((await append(streamId, { events: batch })).status).toBe(201);
  }
  const before = await (
    await SELF.fetch(`http://glyph.test/streams/${streamId}/state`, { headers: adminAuthorization })
  ).json();
  // ctx.abort() throws the instance away with everything in memory, as an eviction or a crash does.
  await runInDurableObject(actorFor(streamId), (_instance: StreamActor, state: DurableObjectState) => {
    state.abort("evicted by the test");
  }).catch(() => undefined);
  const stub = actorFor(streamId);
  const afterResponse = await SELF.fetch(`http://glyph.test/streams/${streamId}/state`, {
    headers: adminAuthorization,
  });
  expect(afterResponse.status).toBe(200);
  expect(afterResponse.headers.get("etag")).toBe('"77"');
  const after = await afterResponse.json();
  expect(after).toEqual(before);
  expect(after).toEqual({
    stream_id: streamId,
    version: 77,
    state: applyEvents(emptyWorkflowState(), events),
  });
  // A fresh instance: its counters started again and it loaded once.
  expect((await stub.stats()).loads).toBe(1);
  const next = await append(streamId, {
    expected_version: 77,
    events: [{ event: contextUpdated("after", true) }],
  });
  expect(next.status).toBe(201);
  expect(((await next.json()) as AppendBody).versions).toEqual([78]);
});
