import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  type DeadLetter,
  type FeedEvent,
  Forbidden,
  GlyphClient,
  InvalidRequest,
  NotFound,
} from "../../client/index";
import { TEST_TOKENS } from "../support/test-tokens";
import { WebhookReceiver } from "../support/webhook-receiver";
import { type RunningWorker, startWorker } from "./worker-harness";

// The client's subscription admin (issue 13) against the real Worker, delivering to a real
// HTTP receiver in this process (127.0.0.1, which the local configuration allows): create,
// deliveries, status, change, pause and resume, replay, dead letters and re-drive, delete,
// and the typed errors of bad input. The Worker polls the feed every 500 ms and gives up on
// a delivery after 2 s of failures, so a dead letter is made in seconds.

let worker: RunningWorker;
const receiver = new WebhookReceiver();
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"), {
    FEED_POLL_INTERVAL_MS: "500",
    SUBSCRIPTION_DEAD_LETTER_AFTER_MS: "2000",
  });
  await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
  await worker.stop();
});

const admin = () => new GlyphClient({ url: worker.url, token: TEST_TOKENS.admin });
const freshType = () => `csub_${crypto.randomUUID().slice(0, 8)}`;
const freshName = () => `client-${crypto.randomUUID().slice(0, 8)}`;
const started = () => ({
  type: "workflow_started" as const,
  workflow_id: crypto.randomUUID(),
  config_version: "v1",
});
const context = (key: string, value: number) => ({ type: "context_updated" as const, key, value });

/** The events of `name`'s deliveries the receiver took (2xx), in the order taken, each once. */
function taken(name: string): FeedEvent[] {
  const seen = new Set<string>();
  return receiver.deliveries
    .filter((d) => d.subscription === name && d.status >= 200 && d.status < 300)
    .flatMap((d) => d.events)
    .filter((event) => !seen.has(event.event_id) && seen.add(event.event_id) !== undefined);
}

const deliveriesOf = (name: string) => receiver.deliveries.filter((d) => d.subscription === name);

/** Polls `read` until `done` holds (or 20 s pass), and returns its last value. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

it("creates a subscription, sees its deliveries and status, changes it, pauses and resumes it, replays it and deletes it", async () => {
  const client = admin();
  const streamType = freshType();
  const name = freshName();
  const created = await client.putSubscription(name, { url: receiver.url, streamType, from: "now" });
  expect(created).toMatchObject({
    created: true,
    name,
    url: receiver.url,
    stream_types: [streamType],
    event_types: null,
    batch_size: 1,
    status: "active",
  });
  if (!created.created) throw new Error("not created");
  expect(created.secret).toMatch(/^whsec_/);
  receiver.secret = created.secret;

  const streamId = crypto.randomUUID();
  const appended = await client.append(streamId, [started(), context("a", 1), context("b", 2)], {
    streamType,
  });
  await receiver.waitUntil(() => taken(name).length >= 3);
  expect(taken(name).map((event) => event.event_id)).toEqual(appended.event_ids);
  expect(deliveriesOf(name).every((d) => d.signed)).toBe(true);
  const status = await until(
    () => client.subscription(name),
    (s) => s.last_delivery_at !== null && s.lag.events === 0,
  );
  expect(status).toMatchObject({
    status: "active",
    lag: { events: 0 },
    attempts: 0,
    dead_letters: 0,
    checkpoint: taken(name)[2]?.checkpoint,
  });
  expect("secret" in status).toBe(false);
  const listed = await client.subscriptions();
  expect(listed.find((s) => s.name === name)).toMatchObject({
    url: receiver.url,
    stream_types: [streamType],
  });

  // A second PUT changes the settings; the secret is not shown again.
  const changed = await client.putSubscription(name, { url: `${receiver.url}?v=2`, streamType });
  expect(changed).toMatchObject({ created: false, url: `${receiver.url}?v=2` });
  expect("secret" in changed).toBe(false);

  // Paused: nothing delivered, the lag shows; resumed: delivered.
  expect((await client.pauseSubscription(name)).status).toBe("paused");
  const more = await client.append(streamId, [context("c", 3), context("d", 4)]);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(taken(name)).toHaveLength(3);
  expect(await client.subscription(name)).toMatchObject({ status: "paused", lag: { events: 2 } });
  expect((await client.resumeSubscription(name)).status).toBe("active");
  await receiver.waitUntil(() => taken(name).length >= 5);
  expect(taken(name).map((event) => event.event_id)).toEqual([...appended.event_ids, ...more.event_ids]);

  // Replay from the third event's checkpoint: the fourth and fifth again, under the same webhook-ids.
  const third = taken(name)[2];
  const before = deliveriesOf(name).length;
  const replaying = await client.replaySubscription(name, third?.checkpoint ?? "");
  expect(replaying).toMatchObject({ checkpoint: third?.checkpoint, lag: { events: 2 } });
  await receiver.waitUntil(() => deliveriesOf(name).length >= before + 2);
  expect(
    deliveriesOf(name)
      .slice(before)
      .map((d) => d.webhookId),
  ).toEqual(more.event_ids);

  await client.deleteSubscription(name);
  await expect(client.subscription(name)).rejects.toBeInstanceOf(NotFound);
  expect((await client.subscriptions()).some((s) => s.name === name)).toBe(false);
});

it("dead-letters a delivery its receiver refuses, lists it, and re-drives it once the receiver takes it", async () => {
  const client = admin();
  const streamType = freshType();
  const name = freshName();
  const refused = new Set<string>();
  receiver.answer = (delivery) =>
    delivery.events.some((event) => refused.has(event.event_id)) ? { status: 500 } : { status: 204 };
  try {
    const created = await client.putSubscription(name, { url: receiver.url, streamType });
    if (created.created) receiver.secret = created.secret;
    const poison = crypto.randomUUID();
    refused.add(poison);
    const appended = await client.append(
      crypto.randomUUID(),
      [started(), { event: context("poison", 1), event_id: poison }, context("fine", 2)],
      { streamType },
    );
    // Tried for 2 s, set aside; the event behind it delivered.
    await receiver.waitUntil(() => taken(name).some((event) => event.event_id === appended.event_ids[2]));
    const letters = [];
    for await (const letter of client.deadLetters(name)) letters.push(letter);
    expect(letters).toEqual([
      expect.objectContaining({ webhook_id: poison, last_error: "HTTP 500", redrive_requested: false }),
    ]);
    expect(letters[0]?.events.map((event) => event.event_id)).toEqual([poison]);
    expect(letters[0]?.attempts).toBeGreaterThan(1);
    expect(await client.subscription(name)).toMatchObject({ dead_letters: 1, lag: { events: 0 } });

    refused.clear();
    expect(await client.redriveDeadLetters(name)).toEqual({ name, redriven: 1 });
    await receiver.waitUntil(() =>
      deliveriesOf(name).some((d) => d.webhookId === poison && d.status === 204),
    );
    const left = await until(
      async () => {
        const rest: DeadLetter[] = [];
        for await (const letter of client.deadLetters(name)) rest.push(letter);
        return rest;
      },
      (rest) => rest.length === 0,
    );
    expect(left).toEqual([]);
    expect((await client.subscription(name)).dead_letters).toBe(0);
    await client.deleteSubscription(name);
  } finally {
    receiver.answer = () => ({ status: 204 });
  }
});

describe("typed errors", () => {
  it("InvalidRequest names the field; NotFound an unknown subscription; Forbidden a token without admin", async () => {
    const client = admin();
    const name = freshName();
    const badUrl = await client
      .putSubscription(name, { url: "ftp://example.com/x" })
      .catch((e: unknown) => e);
    expect(badUrl).toBeInstanceOf(InvalidRequest);
    expect((badUrl as InvalidRequest).message).toMatch(/url: the scheme ftp/);
    await expect(
      client.putSubscription("Not A Name", { url: "https://example.com/hooks" }),
    ).rejects.toBeInstanceOf(InvalidRequest);
    await expect(
      client.putSubscription(name, { url: "https://example.com/hooks", batchSize: 0 }),
    ).rejects.toBeInstanceOf(InvalidRequest);
    const missing = await client.pauseSubscription(name).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFound);
    expect(missing).toMatchObject({ status: 404, code: "subscription_not_found" });
    await expect(client.deleteSubscription(name)).rejects.toBeInstanceOf(NotFound);
    await expect(client.replaySubscription(name, "start")).rejects.toBeInstanceOf(NotFound);
    await expect(
      (async () => {
        for await (const _ of client.deadLetters(name)) break;
      })(),
    ).rejects.toBeInstanceOf(NotFound);
    await expect(client.redriveDeadLetters(name)).rejects.toBeInstanceOf(NotFound);

    // A replay to something that is not a checkpoint, on a subscription that exists.
    await client.putSubscription(name, { url: "https://example.com/hooks", streamType: freshType() });
    const badFrom = await client.replaySubscription(name, "yesterday").catch((e: unknown) => e);
    expect(badFrom).toBeInstanceOf(InvalidRequest);
    expect((badFrom as InvalidRequest).message).toMatch(/\bfrom\b/);
    await client.deleteSubscription(name);

    const reader = new GlyphClient({ url: worker.url, token: TEST_TOKENS.reader });
    await expect(reader.subscriptions()).rejects.toBeInstanceOf(Forbidden);
  });

  it("a private target is refused where private targets are (as in production): InvalidRequest on the url", async () => {
    const strict = await startWorker(inject("databaseWsProxy"), { SUBSCRIPTION_PRIVATE_TARGETS: "refuse" });
    try {
      const client = new GlyphClient({ url: strict.url, token: TEST_TOKENS.admin });
      const name = freshName();
      for (const url of [receiver.url, "http://10.0.0.8/hooks", "http://169.254.169.254/latest"]) {
        const error = await client.putSubscription(name, { url }).catch((e: unknown) => e);
        expect(error, url).toBeInstanceOf(InvalidRequest);
        expect((error as InvalidRequest).message).toMatch(/loopback, private, link-local or internal/);
      }
      await expect(client.subscription(name)).rejects.toBeInstanceOf(NotFound);
    } finally {
      await strict.stop();
    }
  });
});
