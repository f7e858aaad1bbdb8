import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { FeedEvent } from "../../src/feed/feed-event";
import { adminAuthorization } from "../support/test-tokens";
import { WebhookReceiver } from "../support/webhook-receiver";
import { type RunningWorker, startWorker } from "./worker-harness";

// Outbound subscriptions against the real Worker in workerd, delivering to a real HTTP
// receiver in this Node process (on 127.0.0.1, which the local configuration allows):
// every event delivered, in feed order, repeats only under the same webhook-id, through
// random failures and an outage; pause and resume; replay; dead letters and re-drive.

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"), { FEED_POLL_INTERVAL_MS: "500" });
});
afterAll(() => worker.stop());

const freshType = () => `sub_${crypto.randomUUID().slice(0, 8)}`;
const started = () => ({ type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" });
const context = (key: string, value: number) => ({ type: "context_updated", key, value });

async function call(
  base: RunningWorker,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(new URL(path, base.url), {
    method,
    headers: { ...adminAuthorization, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function append(streamId: string, streamType: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await call(worker, "POST", `/streams/${streamId}/events`, {
    stream_type: streamType,
    events: events.map((event) => ({ event })),
  });
  expect(status, JSON.stringify(body)).toBe(201);
  return body.event_ids as string[];
}

/** A new subscription to `streamType`'s events delivering to `receiver`; its status (with the secret). */
async function subscribe(
  base: RunningWorker,
  name: string,
  receiver: WebhookReceiver,
  settings: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const { status, body } = await call(base, "PUT", `/subscriptions/${name}`, {
    url: receiver.url,
    ...settings,
  });
  expect(status, JSON.stringify(body)).toBe(201);
  expect(body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  receiver.secret = body.secret as string;
  return body;
}

const subscriptionName = () => `test-${crypto.randomUUID().slice(0, 8)}`;

/** A PRNG with a seed, so a failing run can be told apart from bad luck. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * What the receiver took of `name`'s deliveries: every event once (its first 2xx), in
 * the order taken; and a check that any event sent more than once always came under the
 * same webhook-id, and every delivery was signed.
 */
function takenOnce(receiver: WebhookReceiver, name: string): FeedEvent[] {
  const mine = receiver.deliveries.filter((delivery) => delivery.subscription === name);
  const webhookIdOf = new Map<string, string>();
  for (const delivery of mine) {
    expect(delivery.signed).toBe(true);
    for (const event of delivery.events) {
      const earlier = webhookIdOf.get(event.event_id);
      if (earlier !== undefined) expect(delivery.webhookId, `event ${event.event_id} resent`).toBe(earlier);
      webhookIdOf.set(event.event_id, delivery.webhookId);
    }
  }
  const seen = new Set<string>();
  const taken: FeedEvent[] = [];
  for (const delivery of mine.filter((d) => d.status >= 200 && d.status < 300)) {
    for (const event of delivery.events) {
      if (seen.has(event.event_id)) continue;
      seen.add(event.event_id);
      taken.push(event);
    }
  }
  return taken;
}

/** Each stream's versions 1, 2, 3, … in the order given. */
function expectStreamsInOrder(events: readonly FeedEvent[]): void {
  const versions = new Map<string, number[]>();
  for (const event of events)
    versions.set(event.stream_id, [...(versions.get(event.stream_id) ?? []), event.version]);
  for (const list of versions.values()) expect(list).toEqual(list.map((_, index) => index + 1));
}

describe("a subscription", () => {
  const receiver = new WebhookReceiver();
  beforeAll(() => receiver.start());
  afterAll(() => receiver.stop());

  it("delivers a commit to a receiver on 127.0.0.1, signed, with the event's id as webhook-id", async () => {
    const streamType = freshType();
    const name = subscriptionName();
    await subscribe(worker, name, receiver, { stream_types: [streamType] });
    const ids = await append(crypto.randomUUID(), streamType, [started()]);
    await receiver.waitUntil((r) => r.taken.some((event) => event.event_id === ids[0]));
    const delivery = receiver.deliveries.find((d) => d.subscription === name);
    expect(delivery).toMatchObject({ webhookId: ids[0], signed: true, status: 204 });
    const status = await call(worker, "GET", `/subscriptions/${name}`);
    expect(status.body).toMatchObject({
      name,
      status: "active",
      lag: { events: 0, seconds: 0 },
      attempts: 0,
      dead_letters: 0,
      checkpoint: delivery?.events[0]?.checkpoint,
    });
    expect(status.body.secret).toBeUndefined();
    expect((await call(worker, "DELETE", `/subscriptions/${name}`)).status).toBe(204);
    expect((await call(worker, "GET", `/subscriptions/${name}`)).status).toBe(404);
  });

  it("delivers every event through a receiver that fails 30 % of deliveries and goes away for a while: none lost, repeats only under the same webhook-id, each stream in order", async () => {
    const streamType = freshType();
    const name = subscriptionName();
    const random = seeded(12);
    receiver.answer = (delivery) =>
      delivery.subscription !== name || random() >= 0.3 ? { status: 200 } : { status: 503, retryAfter: "0" };
    await subscribe(worker, name, receiver, { stream_types: [streamType], batch_size: 4 });
    const streams = Array.from({ length: 4 }, () => crypto.randomUUID());
    const acknowledged = new Set<string>();
    const writeAll = async (rounds: number, offset: number) => {
      await Promise.all(
        streams.map(async (streamId, index) => {
          for (let round = 0; round < rounds; round++) {
            const events = round === 0 && offset === 0 ? [started()] : [context(`s${index}`, offset + round)];
            for (const id of await append(streamId, streamType, events)) acknowledged.add(id);
          }
        }),
      );
    };
    await writeAll(6, 0);
    await receiver.waitUntil(() => takenOnce(receiver, name).length >= 8);
    // The receiver goes away while more events are written, and comes back.
    await receiver.stop();
    await writeAll(6, 100);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await receiver.start();
    await receiver.waitUntil(() => takenOnce(receiver, name).length >= acknowledged.size);
    const taken = takenOnce(receiver, name);
    expect(new Set(taken.map((event) => event.event_id))).toEqual(acknowledged);
    expectStreamsInOrder(taken);
    expect(
      receiver.deliveries.filter((d) => d.subscription === name && d.status === 503).length,
    ).toBeGreaterThan(0);
    const status = await call(worker, "GET", `/subscriptions/${name}`);
    expect(status.body).toMatchObject({
      lag: { events: 0 },
      dead_letters: 0,
      last_error: expect.any(String),
    });
    receiver.answer = () => ({ status: 204 });
    await call(worker, "DELETE", `/subscriptions/${name}`);
  });

  it("holds deliveries while paused (the status shows the lag) and delivers them on resume", async () => {
    const streamType = freshType();
    const name = subscriptionName();
    await subscribe(worker, name, receiver, { stream_types: [streamType] });
    const paused = await call(worker, "POST", `/subscriptions/${name}/pause`);
    expect(paused.body).toMatchObject({ status: "paused" });
    const ids = await append(crypto.randomUUID(), streamType, [started(), context("a", 1), context("b", 2)]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(receiver.deliveries.filter((d) => d.subscription === name)).toEqual([]);
    const status = await call(worker, "GET", `/subscriptions/${name}`);
    expect(status.body).toMatchObject({ status: "paused", lag: { events: 3 } });
    expect((await call(worker, "POST", `/subscriptions/${name}/resume`)).body).toMatchObject({
      status: "active",
    });
    await receiver.waitUntil(() => takenOnce(receiver, name).length >= 3);
    expect(takenOnce(receiver, name).map((event) => event.event_id)).toEqual(ids);
    await call(worker, "DELETE", `/subscriptions/${name}`);
  });

  it("replays from a checkpoint: the events after it again, under their webhook-ids", async () => {
    const streamType = freshType();
    const name = subscriptionName();
    await subscribe(worker, name, receiver, { stream_types: [streamType], from: "start" });
    const ids = await append(crypto.randomUUID(), streamType, [
      started(),
      ...Array.from({ length: 5 }, (_, i) => context("k", i)),
    ]);
    await receiver.waitUntil(() => takenOnce(receiver, name).length >= 6);
    const first = receiver.deliveries.filter((d) => d.subscription === name);
    const from = first[2]?.events[0]?.checkpoint;
    const replayed = await call(worker, "POST", `/subscriptions/${name}/replay`, { from });
    expect(replayed.status).toBe(200);
    expect(replayed.body).toMatchObject({ checkpoint: from, lag: { events: 3 } });
    await receiver.waitUntil(() => receiver.deliveries.filter((d) => d.subscription === name).length >= 9);
    const again = receiver.deliveries.filter((d) => d.subscription === name).slice(6);
    expect(again.map((d) => d.webhookId)).toEqual(ids.slice(3));
    expect(again.map((d) => d.webhookId)).toEqual(first.slice(3).map((d) => d.webhookId));
    // And from the start: everything again.
    await call(worker, "POST", `/subscriptions/${name}/replay`, { from: "start" });
    await receiver.waitUntil(() => receiver.deliveries.filter((d) => d.subscription === name).length >= 15);
    await call(worker, "DELETE", `/subscriptions/${name}`);
  });
});

describe("dead letters", () => {
  // A Worker whose subscriptions give up on a delivery after 2 seconds of failures.
  let impatient: RunningWorker;
  const receiver = new WebhookReceiver();
  beforeAll(async () => {
    impatient = await startWorker(inject("databaseWsProxy"), {
      FEED_POLL_INTERVAL_MS: "500",
      SUBSCRIPTION_DEAD_LETTER_AFTER_MS: "2000",
    });
    await receiver.start();
  });
  afterAll(async () => {
    await receiver.stop();
    await impatient.stop();
  });

  it("go to the dead-letter list after the dead-letter time, delivery goes on behind them, and a re-drive delivers them", async () => {
    const streamType = freshType();
    const name = subscriptionName();
    const refused = new Set<string>();
    receiver.answer = (delivery) =>
      delivery.events.some((event) => refused.has(event.event_id)) ? { status: 500 } : { status: 204 };
    const { status: created, body } = await call(impatient, "PUT", `/subscriptions/${name}`, {
      url: receiver.url,
      stream_types: [streamType],
    });
    expect(created).toBe(201);
    receiver.secret = body.secret as string;
    const streamId = crypto.randomUUID();
    const { body: appended } = await call(impatient, "POST", `/streams/${streamId}/events`, {
      stream_type: streamType,
      events: [{ event: started() }, { event: context("poison", 1) }, { event: context("fine", 2) }],
    });
    const ids = appended.event_ids as string[];
    refused.add(ids[1] as string);
    await receiver.waitUntil(() => takenOnce(receiver, name).some((event) => event.event_id === ids[2]));
    // The poison event was tried several times, then set aside; the one behind it was delivered.
    const attempts = receiver.deliveries.filter((d) => d.webhookId === ids[1]);
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts.every((d) => d.status === 500)).toBe(true);
    const letters = await call(impatient, "GET", `/subscriptions/${name}/dead-letters`);
    const [letter] = letters.body.dead_letters as Array<Record<string, unknown>>;
    expect(letters.body.dead_letters).toHaveLength(1);
    expect(letter).toMatchObject({ webhook_id: ids[1], last_error: "HTTP 500", redrive_requested: false });
    expect(((letter?.events ?? []) as FeedEvent[]).map((event) => event.event_id)).toEqual([ids[1]]);
    expect((await call(impatient, "GET", `/subscriptions/${name}`)).body).toMatchObject({
      dead_letters: 1,
      lag: { events: 0 },
    });

    // Re-driven once the receiver takes it: delivered under the same webhook-id, and gone from the list.
    refused.clear();
    const redrive = await call(impatient, "POST", `/subscriptions/${name}/dead-letters/redrive`, {});
    expect(redrive).toMatchObject({ status: 202, body: { redriven: 1 } });
    await receiver.waitUntil(() =>
      receiver.deliveries.some((d) => d.webhookId === ids[1] && d.status === 204),
    );
    for (let i = 0; i < 50; i++) {
      const after = await call(impatient, "GET", `/subscriptions/${name}/dead-letters`);
      if ((after.body.dead_letters as unknown[]).length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await call(impatient, "GET", `/subscriptions/${name}/dead-letters`)).body.dead_letters).toEqual(
      [],
    );
    await call(impatient, "DELETE", `/subscriptions/${name}`);
  });
});
