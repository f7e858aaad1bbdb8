import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { readWorkerConfig } from "../../config/worker-config";
import { log } from "../../log";
import {
  type DeliveryHeaders,
  readDeliveryHeaders,
  TOLERANCE_SECONDS,
  verifySignature,
} from "../../webhooks/verify-webhook";
import { webhookEventId } from "../../webhooks/webhook-event-id";
import { WEBHOOK_SOURCE_PATTERN } from "../../webhooks/webhook-secrets";
import { openRoute } from "../access-control";
import type { App, AppEnv } from "../app-env";
import { limitBody } from "../limit-body";
import { problem, problemResponses } from "../problem";
import { requireJson } from "../require-json";
import { WebhookBody } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";
import { appendResponses, appendThroughActor } from "./append-events";

// POST /webhooks/:source: events pushed by an external system, signed as Standard
// Webhooks describes. This route does its own authentication (the signature), so it
// needs no bearer token. Order of checks, each refusing before anything is parsed or written:
//   the configuration valid (else 503) → source configured (else 404) → headers present and
//   timestamp fresh (else 401) → body within the limit (else 413) → signature over the
//   raw bytes (else 401) → JSON (else 415) → body schema (else 400/413) → append.

type WebhookEnv = {
  Bindings: AppEnv["Bindings"];
  Variables: AppEnv["Variables"] & {
    /** Set by checkDelivery: the source's keys and the delivery's headers, signature not yet checked. */
    unverified: { source: string; keys: readonly Uint8Array[]; delivery: DeliveryHeaders };
    /** Set by checkSignature only: the delivery is authentic. */
    verified: { source: string; webhookId: string };
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
  const keys = WEBHOOK_SOURCE_PATTERN.test(source) ? config.config.webhookSecrets.get(source) : undefined;
  if (keys === undefined) {
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
  c.set("unverified", { source, keys, delivery: read.delivery });
  await next();
});

/** The signature over the raw body bytes; the content type and the JSON are checked after this. */
const checkSignature = createMiddleware<WebhookEnv>(async (c, next) => {
  const { source, keys, delivery } = c.get("unverified");
  const body = new Uint8Array(await c.req.arrayBuffer());
  const verified = await verifySignature(delivery, body, keys);
  if (!verified.ok) return unauthorized(c, verified);
  c.set("verified", { source, webhookId: delivery.id });
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
    "The event at position i gets the id SHA-256(`<source>\\n<webhook-id>\\n<i>`) as a version 8 UUID, so a " +
    "redelivery of the same webhook-id writes nothing and answers 200 with `idempotent: true` and the versions " +
    "and event ids of the first delivery. A source that is not configured answers 404; a missing or invalid " +
    "header, a stale timestamp or a signature that does not match answers 401; nothing is written then.",
  middleware: [
    openRoute("the sender signs each delivery with its source's secret"),
    logRefusals,
    checkDelivery,
    limitBody,
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
    ...problemResponses(400, 401, 404, 409, 412, 413, 415, 422, 503),
  },
});

export function registerWebhooks(app: App): void {
  serveRoute(app, route, async (c) => {
    const startedAt = Date.now();
    const { source, webhookId } = c.get("verified");
    const body = c.req.valid("json");
    const events = await Promise.all(
      body.events.map(async (item, index) => ({
        ...item,
        event_id: await webhookEventId(source, webhookId, index),
      })),
    );
    return appendThroughActor(
      c,
      {
        streamId: body.stream_id,
        expectedVersion: body.expected_version ?? "any",
        events,
        ...(body.stream_type === undefined ? {} : { streamType: body.stream_type }),
        ...(body.if === undefined ? {} : { condition: body.if }),
      },
      startedAt,
    );
  });
}
