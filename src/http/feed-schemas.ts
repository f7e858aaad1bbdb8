import { z } from "@hono/zod-openapi";
import { WORKFLOW_EVENT_TYPES } from "../events/types";
import { Checkpoint } from "../feed/checkpoint";
import { FeedEvent } from "../feed/feed-event";
import { pageLimit } from "./schemas";

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

export const WatchFeedQuery = z.object({
  after: AfterParameter,
  stream_type: listParameter("stream_type", StreamTypeName, "workflow,invoice"),
});
