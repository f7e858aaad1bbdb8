import { z } from "@hono/zod-openapi";
import { WORKFLOW_EVENT_TYPES } from "../events/types";
import { Checkpoint, decodeCheckpoint, type FeedCheckpoint } from "../feed/checkpoint";
import { FeedEvent } from "../feed/feed-event";
import { pageLimit, wholeNumber } from "./schemas";

// The schemas of the global feed's routes: GET /events, GET /watch and /subscriptions.

const STREAM_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;

/** A comma-separated list in a query parameter, each item checked by `item`. */
function listParameter(name: string, item: z.ZodType<string>, example: string) {
  return z
    .string()
    .transform((text, ctx) => {
      const items = text.split(",").map((part) => part.trim());
      for (const [index, value] of items.entries()) {
        const parsed = item.safeParse(value);
        if (!parsed.success) {
          ctx.addIssue({
            code: "custom",
            message: `${name} item ${index + 1} ("${value.slice(0, 64)}"): ${parsed.error.issues[0]?.message ?? "invalid"}`,
          });
        }
      }
      return [...new Set(items)];
    })
    .optional()
    .openapi({ description: `One or more, comma-separated, such as ${example}`, example, type: "string" });
}

export const StreamTypeName = z
  .string()
  .regex(STREAM_TYPE, { error: "a stream type is 1 to 64 letters, digits, '_', '.' or '-'" });

export const EventTypeName = z.enum(WORKFLOW_EVENT_TYPES as [string, ...string[]], {
  error: `an event type is one of ${WORKFLOW_EVENT_TYPES.join(", ")}`,
});

const AfterParameter = Checkpoint.optional().openapi({
  description:
    "The `checkpoint` of the last event you have, or a page's `next`; leave it out to start at the beginning.",
  type: "string",
});

export const FeedQuery = z.object({
  after: AfterParameter,
  limit: pageLimit,
  stream_type: listParameter("stream_type", StreamTypeName, "workflow,invoice"),
  event_type: listParameter("event_type", EventTypeName, "workflow_completed,workflow_failed"),
});

export const FeedPage = z.object({
  events: z.array(FeedEvent),
  next: z.string().openapi({
    description:
      "The checkpoint to pass as `after` for the next page: the last event's, or the one given when the page is empty. " +
      "A page shorter than `limit` means the feed has nothing more yet.",
  }),
});

/** `after` of GET /watch: a checkpoint, or "now" (the feed's head when the socket opens). */
export const WatchAfterParameter = z
  .string()
  .transform((text, ctx): FeedCheckpoint | "now" => {
    if (text === "now") return "now";
    const checkpoint = decodeCheckpoint(text);
    if (checkpoint !== undefined) return checkpoint;
    ctx.addIssue({
      code: "custom",
      message:
        'is neither "now" nor a checkpoint: pass back exactly the `checkpoint` of a message, "now" to start at the feed\'s head, or leave it out to start at the beginning',
    });
    return z.NEVER;
  })
  .optional()
  .openapi({
    description:
      'The `checkpoint` of the last event (or message) you have; "now" to start at the feed\'s head when the socket opens (the first message, `started`, says which checkpoint that is); leave it out to start at the beginning.',
    type: "string",
  });

export const WatchFeedQuery = z.object({
  after: WatchAfterParameter,
  stream_type: listParameter("stream_type", StreamTypeName, "workflow,invoice"),
});

// Subscriptions.

export const SubscriptionNameParam = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9_-]{1,64}$/, { error: "a subscription name is 1 to 64 of a-z, 0-9, '_' or '-'" })
    .openapi({ description: "The subscription's name", example: "billing-projection" }),
});

/** Where a subscription starts (or a replay goes back to): the beginning, the feed's head now, or after a checkpoint. */
export const SubscriptionFrom = z.union([z.enum(["start", "now"]), Checkpoint]).openapi({
  description: '"start" (every event), "now" (events after the feed\'s head now) or a checkpoint',
  type: "string",
  example: "now",
});

export const PutSubscriptionBody = z
  .object({
    url: z.string().max(2048).openapi({
      description: "Where to POST deliveries: http(s)",
      example: "https://example.com/hooks/glyph",
    }),
    event_types: z.array(EventTypeName).min(1).max(20).optional(),
    stream_types: z.array(StreamTypeName).min(1).max(50).optional(),
    from: SubscriptionFrom.optional().default("now"),
    batch_size: z.number().int().min(1).max(100).optional().default(1).openapi({
      description: "Events per delivery, 1 to 100 (default 1)",
    }),
  })
  .strict();

export const ReplayBody = z.object({ from: SubscriptionFrom }).strict();

export const RedriveBody = z
  .object({
    ids: z.array(z.number().int().min(1)).min(1).max(1000).optional().openapi({
      description: "The dead letters to re-drive; leave out for all of them.",
    }),
  })
  .strict();

export const SubscriptionStatus = z.object({
  name: z.string(),
  url: z.string(),
  event_types: z.array(z.string()).nullable(),
  stream_types: z.array(z.string()).nullable(),
  batch_size: z.number().int(),
  status: z.enum(["active", "retrying", "paused"]),
  checkpoint: z
    .string()
    .openapi({ description: "Every event up to here has been delivered (or dead-lettered)." }),
  lag: z.object({
    events: z.number().int().openapi({ description: "Events not yet delivered (counted up to 10000)" }),
    seconds: z.number().int().openapi({ description: "Age of the oldest of them" }),
  }),
  last_delivery_at: z.string().nullable(),
  last_error: z.string().nullable(),
  last_error_at: z.string().nullable(),
  attempts: z.number().int().openapi({ description: "Failed attempts of the delivery in flight" }),
  next_attempt_at: z.string().nullable(),
  dead_letters: z.number().int(),
  created_at: z.string(),
});

export const CreatedSubscription = SubscriptionStatus.extend({
  secret: z.string().openapi({
    description: "The whsec_ secret deliveries are signed with (Standard Webhooks). Shown only now: keep it.",
  }),
});

export const SubscriptionList = z.object({ subscriptions: z.array(SubscriptionStatus) });

export const DeadLettersQuery = z.object({
  after: wholeNumber("after").optional().openapi({ description: "The last id of the previous page" }),
  limit: pageLimit,
});

export const DeadLettersPage = z.object({
  dead_letters: z.array(
    z.object({
      id: z.number().int(),
      webhook_id: z.string(),
      events: z.array(FeedEvent),
      first_attempt_at: z.string(),
      dead_at: z.string(),
      attempts: z.number().int(),
      last_error: z.string(),
      redrive_requested: z.boolean(),
    }),
  ),
  next: z.string().nullable().openapi({ description: "`after` for the next page, or null at the end" }),
});
