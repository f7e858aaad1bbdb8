import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { StreamActor } from "../../src/actor/stream-actor";
import { contextUpdated, started } from "../support/event-builders";
import { api, appendOk, type EventsPageResult, getJson } from "../support/http-client";

// Events of almost 1 MiB each (an append body's limit), more of them than one response
// over HTTP may carry (10 MiB at Neon and at the local /sql endpoint): every read of
// events is cut by size (src/events/page-bytes.ts), so the stream can still be paged,
// loaded by a cold actor and caught up by a watcher.

const bindings = env as unknown as Env;
const actorFor = (streamId: string) => bindings.STREAM_ACTOR.get(bindings.STREAM_ACTOR.idFromName(streamId));
const BIG_EVENTS = 12;
const big = (index: number) => `${index}`.padEnd(900_000, "x");

it("pages, loads and replays a stream whose events together pass the 10 MiB response limit", async () => {
  const streamId = crypto.randomUUID();
  await appendOk(streamId, { events: [{ event: started() }] });
  for (let index = 0; index < BIG_EVENTS; index++) {
    await appendOk(streamId, { events: [{ event: contextUpdated(`big${index}`, big(index)) }] });
  }

  // GET /events: pages shorter than the limit asked for, each linking the next, all events once.
  const versions: number[] = [];
  let path: string | null = `/streams/${streamId}/events?limit=1000`;
  let pages = 0;
  while (path !== null) {
    const page: EventsPageResult & { next: string | null } = await getJson(path);
    versions.push(...page.events.map((event) => event.version));
    path = page.next;
    pages++;
  }
  expect(versions).toEqual(Array.from({ length: BIG_EVENTS + 1 }, (_, i) => i + 1));
  expect(pages).toBeGreaterThan(2);

  // A cold actor loads it (head and a first, size-bounded part of the tail in one statement, then pages).
  await runInDurableObject(actorFor(streamId), (_instance: StreamActor, state: DurableObjectState) => {
    state.abort("evicted by the test");
  }).catch(() => undefined);
  const response = await api(`/streams/${streamId}/state`);
  expect(response.status).toBe(200);
  const body = (await response.json()) as { version: number; state: { context: Record<string, string> } };
  expect(body.version).toBe(BIG_EVENTS + 1);
  expect(body.state.context[`big${BIG_EVENTS - 1}`]).toBe(big(BIG_EVENTS - 1));
  expect((await actorFor(streamId).stats()).loads).toBe(1);
});
