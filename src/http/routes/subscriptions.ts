import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { SqlQueryable } from "../../db/sql-client";
import { withTimeout } from "../../db/with-timeout";
import { logServiceFault, toFailure } from "../../events/failure";
import { encodeCheckpoint, FEED_START, type FeedCheckpoint } from "../../feed/checkpoint";
import { feedHead } from "../../feed/feed-statements";
import { subscriptionActor } from "../../subscriptions/subscription-actor";
import {
  type DeadLetter,
  deleteSubscription,
  getSubscription,
  listDeadLetters,
  listSubscriptions,
  putSubscription,
  replaySubscription,
  requestRedrive,
  type Subscription,
  setPaused,
  subscriptionLag,
} from "../../subscriptions/subscription-store";
import { refuseTarget } from "../../subscriptions/target-url";
import { newWebhookSecret } from "../../webhooks/webhook-secrets";
import { requireScope } from "../access-control";
import type { App, AppEnv } from "../app-env";
import {
  CreatedSubscription,
  DeadLettersPage,
  DeadLettersQuery,
  PutSubscriptionBody,
  RedriveBody,
  ReplayBody,
  SubscriptionList,
  SubscriptionNameParam,
  SubscriptionStatus,
} from "../feed-schemas";
import { failureResponse, problem, problemResponses } from "../problem";
import { requestDatabase } from "../request-database";
import { requireJson } from "../require-json";
import { jsonContent, serveRoute } from "../serve-route";

// Outbound subscriptions (admin scope): the global feed POSTed to an HTTP endpoint as
// signed Standard Webhooks. These routes change the subscription's row; its actor
// (src/subscriptions/subscription-actor.ts) delivers, and is woken after every change.

/** Lag is counted up to this many events. */
const LAG_COUNT_CAP = 10_000;

const params = { params: SubscriptionNameParam };
const statusContent = (description: string) => ({ description, ...jsonContent(SubscriptionStatus) });

const RedriveAnswer = SubscriptionStatus.pick({ name: true }).extend({
  redriven: SubscriptionStatus.shape.dead_letters,
});

const putRoute = createRoute({
  method: "put",
  path: "/subscriptions/{name}",
  summary: "Create a subscription, or change its settings",
  description:
    "Deliveries POST `{subscription, events}` (a batch of the feed's events, each with its checkpoint) to `url`, " +
    "signed as Standard Webhooks with the `whsec_` secret answered on creation (only then). `webhook-id` is the " +
    "event's id for a batch of one (`batch_` and a hash of the ids for more), the same on every attempt. At least " +
    "once, in feed order; a 2xx moves the checkpoint on; otherwise retried with exponential backoff and jitter " +
    "(honouring Retry-After) until SUBSCRIPTION_DEAD_LETTER_AFTER_MS, then dead-lettered. On an existing " +
    "subscription the URL, filters and batch size change (a change of filters or batch size ends the delivery in " +
    "flight) and `from` is ignored: POST …/replay moves the checkpoint.",
  middleware: [requireScope("admin", "many streams"), requireJson("the subscription")] as const,
  request: { ...params, body: { required: true, ...jsonContent(PutSubscriptionBody) } },
  responses: {
    200: statusContent("The subscription's settings changed"),
    201: { description: "The subscription was made", ...jsonContent(CreatedSubscription) },
    ...problemResponses(400, 401, 403, 415, 429, 503),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/subscriptions",
  summary: "List subscriptions with their status",
  middleware: [requireScope("admin", "many streams")] as const,
  responses: {
    200: { description: "Every subscription", ...jsonContent(SubscriptionList) },
    ...problemResponses(401, 403, 429, 503),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/subscriptions/{name}",
  summary: "A subscription's status: checkpoint, lag, last delivery, last error, attempts",
  middleware: [requireScope("admin", "many streams")] as const,
  request: params,
  responses: { 200: statusContent("The subscription"), ...problemResponses(400, 401, 403, 404, 429, 503) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/subscriptions/{name}",
  summary: "Delete a subscription and its dead letters",
  middleware: [requireScope("admin", "many streams")] as const,
  request: params,
  responses: { 204: { description: "Deleted" }, ...problemResponses(400, 401, 403, 404, 429, 503) },
});

const pauseRoute = createRoute({
  method: "post",
  path: "/subscriptions/{name}/pause",
  summary: "Pause deliveries (the delivery in flight is retried from the start on resume)",
  middleware: [requireScope("admin", "many streams")] as const,
  request: params,
  responses: { 200: statusContent("Paused"), ...problemResponses(400, 401, 403, 404, 429, 503) },
});

const resumeRoute = createRoute({
  method: "post",
  path: "/subscriptions/{name}/resume",
  summary: "Resume deliveries, at once (a backoff in progress is cut short)",
  middleware: [requireScope("admin", "many streams")] as const,
  request: params,
  responses: { 200: statusContent("Resumed"), ...problemResponses(400, 401, 403, 404, 429, 503) },
});

const replayRoute = createRoute({
  method: "post",
  path: "/subscriptions/{name}/replay",
  summary: "Deliver again from a checkpoint (or from the start, or skip to now)",
  description: "Moves the checkpoint to `from`, back or forward; the delivery in flight is dropped.",
  middleware: [requireScope("admin", "many streams"), requireJson("the replay")] as const,
  request: { ...params, body: { required: true, ...jsonContent(ReplayBody) } },
  responses: { 200: statusContent("Replaying"), ...problemResponses(400, 401, 403, 404, 415, 429, 503) },
});

const deadLettersRoute = createRoute({
  method: "get",
  path: "/subscriptions/{name}/dead-letters",
  summary: "The deliveries a receiver did not take in time, as they were sent",
  middleware: [requireScope("admin", "many streams")] as const,
  request: { ...params, query: DeadLettersQuery },
  responses: {
    200: { description: "A page of dead letters", ...jsonContent(DeadLettersPage) },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

const redriveRoute = createRoute({
  method: "post",
  path: "/subscriptions/{name}/dead-letters/redrive",
  summary: "Deliver dead letters again (all, or those listed), before the feed's next events",
  middleware: [requireScope("admin", "many streams"), requireJson("the re-drive")] as const,
  request: { ...params, body: { required: true, ...jsonContent(RedriveBody) } },
  responses: {
    202: { description: "Queued for delivery", ...jsonContent(RedriveAnswer) },
    ...problemResponses(400, 401, 403, 404, 415, 429, 503),
  },
});

export function registerSubscriptions(app: App): void {
  serveRoute(app, putRoute, async (c) => {
    const { name } = c.req.valid("param");
    const body = c.req.valid("json");
    const config = c.get("config");
    const refused = refuseTarget(body.url, config.subscriptions.allowPrivateTargets);
    if (refused !== undefined) {
      return problem(c, {
        status: 400,
        code: "invalid_request",
        title: "Invalid request",
        detail: `The body is invalid: url: ${refused}.`,
        extras: { errors: [{ pointer: "/url", detail: refused }] },
      });
    }
    return withDatabase(c, "put_subscription", async (db) => {
      const checkpoint = await startingPoint(db, body.from);
      const secret = newWebhookSecret();
      const saved = await putSubscription(
        db,
        {
          name,
          url: body.url,
          eventTypes: body.event_types,
          streamTypes: body.stream_types,
          batchSize: body.batch_size,
        },
        { secret, checkpoint },
      );
      const status = await statusOf(db, saved.subscription);
      await wake(c, name);
      return saved.created ? c.json({ ...status, secret }, 201) : c.json(status, 200);
    });
  });

  serveRoute(app, listRoute, (c) =>
    withDatabase(c, "list_subscriptions", async (db) => {
      const subscriptions = await listSubscriptions(db);
      const statuses = [];
      for (const subscription of subscriptions) statuses.push(await statusOf(db, subscription));
      return c.json({ subscriptions: statuses }, 200);
    }),
  );

  serveRoute(app, getRoute, async (c) => {
    const { name } = c.req.valid("param");
    return withDatabase(c, "get_subscription", async (db) => {
      const subscription = await getSubscription(db, name);
      if (subscription === undefined) return notFound(c, name);
      return c.json(await statusOf(db, subscription), 200);
    });
  });

  serveRoute(app, deleteRoute, async (c) => {
    const { name } = c.req.valid("param");
    return withDatabase(c, "delete_subscription", async (db) => {
      if (!(await deleteSubscription(db, name))) return notFound(c, name);
      await wake(c, name);
      return c.body(null, 204);
    });
  });

  for (const [route, paused] of [
    [pauseRoute, true],
    [resumeRoute, false],
  ] as const) {
    serveRoute(app, route, async (c) => {
      const { name } = c.req.valid("param");
      return withDatabase(c, paused ? "pause_subscription" : "resume_subscription", async (db) => {
        const subscription = await setPaused(db, name, paused);
        if (subscription === undefined) return notFound(c, name);
        if (!paused) await wake(c, name);
        return c.json(await statusOf(db, subscription), 200);
      });
    });
  }

  serveRoute(app, replayRoute, async (c) => {
    const { name } = c.req.valid("param");
    const { from } = c.req.valid("json");
    return withDatabase(c, "replay_subscription", async (db) => {
      const subscription = await replaySubscription(db, name, await startingPoint(db, from));
      if (subscription === undefined) return notFound(c, name);
      await wake(c, name);
      return c.json(await statusOf(db, subscription), 200);
    });
  });

  serveRoute(app, deadLettersRoute, async (c) => {
    const { name } = c.req.valid("param");
    const { after, limit } = c.req.valid("query");
    return withDatabase(c, "list_dead_letters", async (db) => {
      if ((await getSubscription(db, name)) === undefined) return notFound(c, name);
      const letters = await listDeadLetters(db, name, after ?? 0, limit);
      const last = letters.at(-1);
      return c.json(
        {
          dead_letters: letters.map(deadLetterJson),
          next: letters.length === limit && last !== undefined ? String(last.id) : null,
        },
        200,
      );
    });
  });

  serveRoute(app, redriveRoute, async (c) => {
    const { name } = c.req.valid("param");
    const { ids } = c.req.valid("json");
    return withDatabase(c, "redrive_dead_letters", async (db) => {
      if ((await getSubscription(db, name)) === undefined) return notFound(c, name);
      const redriven = await requestRedrive(db, name, ids);
      await wake(c, name);
      return c.json({ name, redriven }, 202);
    });
  });
}

/** Runs `work` on a connection of this request, bounded by DATABASE_TIMEOUT_MS; a database failure is a logged 503. */
async function withDatabase(
  c: Context<AppEnv>,
  operation: string,
  work: (db: SqlQueryable) => Promise<Response>,
): Promise<Response> {
  const config = c.get("config");
  const { db, release } = requestDatabase(config);
  try {
    return await withTimeout(work(db), config.databaseTimeoutMs);
  } catch (error) {
    return failureResponse(c, logServiceFault(toFailure(error), error, { operation }));
  } finally {
    release();
  }
}

async function startingPoint(
  db: SqlQueryable,
  from: "start" | "now" | FeedCheckpoint,
): Promise<FeedCheckpoint> {
  if (from === "start") return FEED_START;
  if (from === "now") return feedHead(db);
  return from;
}

/** Tells the subscription's actor that something changed. */
async function wake(c: Context<AppEnv>, name: string): Promise<void> {
  await subscriptionActor(c.env, name).wake(name);
}

function notFound(c: Context, name: string): Response {
  return problem(c, {
    status: 404,
    code: "subscription_not_found",
    title: "Subscription not found",
    detail: `There is no subscription ${name}; GET /subscriptions lists them, PUT /subscriptions/${name} makes it.`,
  });
}

async function statusOf(db: SqlQueryable, subscription: Subscription) {
  const lag = await subscriptionLag(db, subscription, LAG_COUNT_CAP);
  const time = (date: Date | undefined) => date?.toISOString() ?? null;
  return {
    name: subscription.name,
    url: subscription.url,
    event_types: subscription.eventTypes === undefined ? null : [...subscription.eventTypes],
    stream_types: subscription.streamTypes === undefined ? null : [...subscription.streamTypes],
    batch_size: subscription.batchSize,
    status: subscription.paused
      ? ("paused" as const)
      : subscription.attempts > 0
        ? ("retrying" as const)
        : ("active" as const),
    checkpoint: encodeCheckpoint(subscription.checkpoint),
    lag: { events: lag.events, seconds: lag.seconds },
    last_delivery_at: time(subscription.lastDeliveryAt),
    last_error: subscription.lastError ?? null,
    last_error_at: time(subscription.lastErrorAt),
    attempts: subscription.attempts,
    next_attempt_at: time(subscription.nextAttemptAt),
    dead_letters: lag.deadLetters,
    created_at: subscription.createdAt.toISOString(),
  };
}

function deadLetterJson(letter: DeadLetter) {
  return {
    id: letter.id,
    webhook_id: letter.webhookId,
    events: letter.events,
    first_attempt_at: letter.firstAttemptAt.toISOString(),
    dead_at: letter.deadAt.toISOString(),
    attempts: letter.attempts,
    last_error: letter.lastError,
    redrive_requested: letter.redriveRequested,
  };
}
