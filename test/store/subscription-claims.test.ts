import { afterAll, expect, it } from "vitest";
import { PgEventStore } from "../../src/events/postgres";
import { decodeCheckpoint, FEED_START } from "../../src/feed/checkpoint";
import { readFeed } from "../../src/feed/feed-statements";
import {
  claimBatch,
  claimRedrive,
  deleteSubscription,
  getSubscription,
  putSubscription,
  recordDeadLetter,
  requestRedrive,
  setPaused,
} from "../../src/subscriptions/subscription-store";
import { openTestPool } from "../support/database";
import { contextUpdated, started, wrap } from "../support/event-builders";

// A subscription's actor reads its row, then claims the next delivery. A pause that
// commits in between must win: the claim names the row as read (its generation), and is
// refused while the subscription is paused, so nothing goes out after the pause answered.
// (Found by test/e2e/client-subscriptions.test.ts: an event appended after a pause was
// delivered by an actor that had read the row just before it.)

const pool = openTestPool(2);
const store = new PgEventStore(pool);
afterAll(() => pool.end());

it("no batch and no re-drive is claimed on a row read before a pause; both are after the resume", async () => {
  const streamType = `claims_${crypto.randomUUID().slice(0, 8)}`;
  const name = `claims-${crypto.randomUUID().slice(0, 8)}`;
  await putSubscription(
    pool,
    {
      name,
      url: "https://example.com/hooks",
      eventTypes: undefined,
      streamTypes: [streamType],
      batchSize: 1,
    },
    { secret: "whsec_c2VjcmV0", checkpoint: FEED_START },
  );
  await store.append({
    streamId: crypto.randomUUID(),
    expectedVersion: "no_stream",
    events: wrap(started(), contextUpdated("k", 1)),
    streamType,
  });
  const events = await readFeed(pool, { after: FEED_START, limit: 1, streamTypes: [streamType] });
  const through = decodeCheckpoint(events[0]?.checkpoint ?? "");
  if (through === undefined) throw new Error("no event in the feed");

  // The first event is dead-lettered and asked to be re-driven, so both kinds of claim have work.
  const active = await getSubscription(pool, name);
  if (active === undefined) throw new Error("no subscription");
  expect(await claimBatch(pool, active, through)).toBe(true);
  const claimed = await getSubscription(pool, name);
  if (claimed === undefined) throw new Error("no subscription");
  await recordDeadLetter(pool, claimed, { webhookId: "w1", events: events.slice(0, 1) }, "HTTP 500");
  expect(await requestRedrive(pool, name, undefined)).toBe(1);

  const readBeforePause = await getSubscription(pool, name);
  if (readBeforePause === undefined) throw new Error("no subscription");
  expect(readBeforePause).toMatchObject({ paused: false, redriveWaiting: true });
  await setPaused(pool, name, true);
  const next = await readFeed(pool, {
    after: readBeforePause.checkpoint,
    limit: 1,
    streamTypes: [streamType],
  });
  const nextThrough = decodeCheckpoint(next[0]?.checkpoint ?? "");
  if (nextThrough === undefined) throw new Error("no second event in the feed");
  expect(await claimRedrive(pool, readBeforePause)).toBeUndefined();
  expect(await claimBatch(pool, readBeforePause, nextThrough)).toBe(false);
  expect(await getSubscription(pool, name)).toMatchObject({
    paused: true,
    pendingThrough: undefined,
    pendingDeadLetter: undefined,
  });

  await setPaused(pool, name, false);
  const resumed = await getSubscription(pool, name);
  if (resumed === undefined) throw new Error("no subscription");
  expect((await claimRedrive(pool, resumed))?.webhookId).toBe("w1");
  await deleteSubscription(pool, name);
});
