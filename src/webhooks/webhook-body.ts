import { Uuid } from "../events/wire";
import { AppendBody } from "../http/schemas";

/**
 * The body of POST /webhooks/:source: an append body (the same events, limits,
 * expected_version and stream_type) that names its stream. Event ids are derived
 * from the delivery's webhook-id, so an event may not bring its own.
 */
export const WebhookBody = AppendBody.extend({
  stream_id: Uuid.meta({
    description: "The stream to append to.",
    example: "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4",
  }),
})
  .superRefine((body, ctx) => {
    for (const [index, item] of body.events.entries()) {
      if (item.event_id !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["events", index, "event_id"],
          message: "leave event_id out: a webhook's event ids are derived from its webhook-id",
        });
      }
    }
  })
  .openapi({
    description:
      "Like the body of POST /streams/{streamId}/events, plus `stream_id`; `events[].event_id` is not accepted.",
  });
