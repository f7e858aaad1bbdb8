import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { coversStreamId, type StreamScope, typeLimit } from "../../auth/stream-scope";
import { readWorkerConfig } from "../../config/worker-config";
import { bodySha256, type WebhookDelivery } from "../../events/webhook-deliveries";
import { log } from "../../log";
import {
  type DeliveryHeaders,
  readDeliveryHeaders,
  TOLERANCE_SECONDS,
  verifySignature,
} from "../../webhooks/verify-webhook";
import { WEBHOOK_SOURCE_PATTERN, type WebhookSource } from "../../webhooks/webhook-secrets";
import { openRoute } from "../access-control";
import type { App, AppEnv } from "../app-env";
import { problem, problemResponses } from "../problem";
import { overRateLimit, rateLimited } from "../rate-limit";
import { readBody } from "../read-body";
import { requireJson } from "../require-json";
import { WebhookBody } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { appendResponses, appendThroughActor } from "./append-events";

// POST /webhooks/:source: events pushed by an external system, signed as Standard
// Webhooks describes. This route does its own authentication (the signature), so it
// needs no bearer token. Order of checks, each refusing before anything is parsed or written:
//   the configuration valid (else 503) → source configured (else 404) → headers present and
//   timestamp fresh (else 401) → body within the limit and in time (else 413, 408) →
//   signature over the raw bytes (else 401) → the source's rate limit (else 429) → JSON
//   (else 415) → body schema (else 400/413) → the source's streams (else 403) → append.

type WebhookEnv = {
  Bindings: AppEnv["Bindings"];
  Variables: AppEnv["Variables"] & {
    /** Set by checkDelivery: the source (its keys and limits) and the delivery's headers, signature not yet checked. */
    unverified: { source: string; webhook: WebhookSource; delivery: DeliveryHeaders };
    /** Set by checkSignature only: the delivery is authentic; `delivery` is what it is known by. */
    verified: { delivery: WebhookDelivery; scope: StreamScope };
  };
};

/** At most this much of the source from the URL goes into a log line: it is the sender's text. */
const LOGGED_SOURCE_LENGTH = 64;

/**
 * One JSON line per refused delivery (4xx): the source and the reason the sender was
 * given, which never holds a secret or a signature.
 */
const logRefusals = createMiddleware<WebhookEnv>(async (c, next) => {
  await next();
  if (c.res.status < 400 || c.res.status >= 500) return;
  const refusal = (await c.res.clone().json()) as { type: string; detail: string };
  log({
    event: "webhook_refused",
    level: "warn",
    source: (c.req.param("source") ?? "").slice(0, LOGGED_SOURCE_LENGTH),
    status: c.res.status,
    code: refusal.type.slice(refusal.type.lastIndexOf(":") + 1),
    reason: refusal.detail,
  });
});

const unauthorized = (c: Context, refusal: { code: string; detail: string }) =>
  problem(c, { status: 401, code: refusal.code, title: "Webhook not verified", detail: refusal.detail });

/** Everything but the signature: configuration, source, headers and timestamp. */
const checkDelivery = createMiddleware<WebhookEnv>(async (c, next) => {
  const config = readWorkerConfig(c.env);
  if (!config.ok) {
    // The sender is not the operator: it learns which variable, not what is wrong with it;
    // the log says what.
    log({
      event: "webhook_refused",
      level: "error",
      source: (c.req.param("source") ?? "").slice(0, LOGGED_SOURCE_LENGTH),
      status: 503,
      code: "webhooks_misconfigured",
      reason: config.error.message,
    });
    return problem(c, {
      status: 503,
      code: "webhooks_misconfigured",
      title: "Webhooks misconfigured",
      detail:
        `The server's configuration (${config.error.variables.join(", ")}) is invalid, so no webhook can be accepted. ` +
        "Nothing is wrong with this delivery: retry later; the operator can find the cause in the logs.",
      headers: { "retry-after": "60" },
    });
  }
  const source = c.req.param("source") ?? "";
  const webhook = WEBHOOK_SOURCE_PATTERN.test(source) ? config.config.webhookSecrets.get(source) : undefined;
  if (webhook === undefined) {
    return problem(c, {
      status: 404,
      code: "webhook_source_not_found",
      title: "Unknown webhook source",
      detail:
        `No webhook source named ${JSON.stringify(source.slice(0, 64))} is configured here; check the URL ` +
        "(/webhooks/<source>, the source in lower case) or ask the operator to add its secret to WEBHOOK_SECRETS.",
    });
  }
  const read = readDeliveryHeaders((name) => c.req.header(name), Date.now());
  if (!read.ok) return unauthorized(c, read);
  c.set("config", config.config);
  c.set("unverified", { source, webhook, delivery: read.delivery });
  await next();
});

/** The signature over the raw body bytes; the content type and the JSON are checked after this. */
const checkSignature = createMiddleware<WebhookEnv>(async (c, next) => {
  const { source, webhook, delivery } = c.get("unverified");
  const body = new Uint8Array(await c.req.arrayBuffer());
  const verified = await verifySignature(delivery, body, webhook.keys);
  if (!verified.ok) return unauthorized(c, verified);
  // Counted once authentic, so a forger cannot spend the source's limit.
  if (await overRateLimit(c.get("config").requestRateLimit, `webhook:${source}`))
    return rateLimited(c, `Webhook source ${source}`);
  c.set("verified", {
    delivery: { source, webhookId: delivery.id, bodySha256: await bodySha256(body) },
    scope: webhook.scope,
  });
  await next();
});

const route = createRoute({
  method: "post",
  path: "/webhooks/{source}",
  summary: "Receive a signed webhook",
  description:
    "Appends the events an external system pushes, verified as [Standard Webhooks](https://www.standardwebhooks.com) " +
    "describes; no bearer token. `webhook-signature` holds space-separated `v1,<base64>` entries, each an " +
    "HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<raw body>` keyed with the base64-decoded part of a " +
    "`whsec_` secret of this source (WEBHOOK_SECRETS); one matching entry is enough and other versions are " +
    `ignored. webhook-timestamp must be within ${TOLERANCE_SECONDS} seconds of the server's clock.\n\n` +
    "A message is known by its source and webhook-id: its events get new random ids, and a redelivery (the same " +
    "webhook-id and the same body) writes nothing and answers 200 with `idempotent: true` and the versions and " +
    "event ids of the first delivery; the same webhook-id with another body answers 409 `redelivery_mismatch`. " +
    "A source limited to streams or stream types in WEBHOOK_SECRETS is refused others with 403, as a token is. " +
    "A source that is not configured answers 404; a missing or invalid header, a stale timestamp or a signature " +
    "that does not match answers 401; nothing is written then.",
  middleware: [
    openRoute("the sender signs each delivery with its source's secret"),
    logRefusals,
    checkDelivery,
    readBody,
    checkSignature,
    requireJson("the webhook body"),
  ] as const,
  request: {
    params: z.object({
      source: z
        .string()
        .regex(WEBHOOK_SOURCE_PATTERN)
        .openapi({
          param: { name: "source", in: "path" },
          description: "The sender, as named in WEBHOOK_SECRETS: 1 to 64 of a-z, 0-9, '_' or '-'.",
          example: "billing",
        }),
    }),
    headers: z.object({
      "webhook-id": z.string().openapi({
        description: "The message id, the same on every attempt: 1 to 256 visible ASCII characters.",
        example: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
      }),
      "webhook-timestamp": z.string().openapi({
        description: "Unix seconds of this attempt.",
        example: "1767268800",
      }),
      "webhook-signature": z.string().openapi({
        description: "Space-separated `v1,<base64 HMAC-SHA256>` entries.",
        example: "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
      }),
    }),
    body: { required: true, ...jsonContent(WebhookBody) },
  },
  responses: {
    ...appendResponses("A redelivery: nothing written, the first delivery's versions and event ids"),
    ...problemResponses(400, 401, 403, 404, 408, 409, 412, 413, 415, 422, 429, 503),
  },
});

export function registerWebhooks(app: App): void {
  serveRoute(app, route, async (c) => {
    const startedAt = Date.now();
    const { delivery, scope } = c.get("verified");
    const body = c.req.valid("json");
    // The source's limits, as a token's: its streams here, its stream types in the actor.
    if (!coversStreamId(scope, body.stream_id)) {
      return problem(c, {
        status: 403,
        code: "forbidden",
        title: "Forbidden",
        detail: `Webhook source ${delivery.source} may not append to stream ${body.stream_id}.`,
      });
    }
    return appendThroughActor(
      c,
      {
        streamId: body.stream_id,
        expectedVersion: body.expected_version ?? "any",
        // No ids: the actor makes new ones; a redelivery is known by its delivery instead.
        events: body.events,
        ...(body.stream_type === undefined ? {} : { streamType: body.stream_type }),
        ...(body.if === undefined ? {} : { condition: JSON.stringify(body.if) }),
        ...(body.turn === undefined ? {} : { turn: body.turn }),
        ...typeLimit(scope),
        delivery,
      },
      startedAt,
    );
  });
}
