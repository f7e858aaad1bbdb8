import { z } from "@hono/zod-openapi";
import { findUnstorableText } from "../events/storable-text";
import { StoredEvent, TIMESTAMP_FIELD, WorkflowEvent, type WorkflowEventType } from "../events/types";
import { ANY_JSON_META, JsonValue, Uuid } from "../events/wire";
import { MAX_CONDITION_ENTRIES, StateCondition } from "../state/state-condition";
import { WorkflowState, WorkflowStatus } from "../state/workflow-state";
import { DEFAULT_PAGE_SIZE, MAX_EVENTS_PER_APPEND, MAX_METADATA_BYTES, MAX_PAGE_SIZE } from "./limits";
import { StreamsCursorParameter } from "./streams-cursor";

// The HTTP edge's schemas: what routes validate with and what /openapi.json shows.

/** Marks an issue that must be answered 413 rather than 400. */
export const TOO_LARGE = { status: 413 } as const;

/** The server may fill a missing timestamp with its clock, never overwrite a given one. */
function fillTimestamp(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !Object.hasOwn(TIMESTAMP_FIELD, type)) return value;
  const field = TIMESTAMP_FIELD[type as WorkflowEventType];
  if ((value as Record<string, unknown>)[field] !== undefined) return value;
  return { ...value, [field]: new Date().toISOString() };
}

export const StreamIdParam = z.object({
  // .meta, not .openapi: Uuid is built with plain zod, possibly before @hono/zod-openapi has loaded.
  streamId: Uuid.meta({
    description: "The stream's id, a UUID",
    example: "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4",
  }),
});

export const ExpectedVersionInput = z
  .union([
    z.enum(["any", "no_stream", "stream_exists"]),
    z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ])
  .openapi({ description: '"any", "no_stream", "stream_exists", or the exact current version' });

const Metadata = JsonValue.superRefine((value, ctx) => {
  const bytes = new TextEncoder().encode(JSON.stringify(value)).length;
  if (bytes > MAX_METADATA_BYTES) {
    ctx.addIssue({
      code: "custom",
      message: `metadata is ${bytes} bytes of JSON; the limit is ${MAX_METADATA_BYTES}`,
      params: TOO_LARGE,
    });
  }
}).meta({ ...ANY_JSON_META, description: `Any JSON value, at most ${MAX_METADATA_BYTES} bytes` });

export const NewEventInput = z
  .object({
    event: z.preprocess(fillTimestamp, WorkflowEvent).openapi({
      description: "A workflow event; its timestamp may be left out and is then set by the server.",
    }),
    event_id: Uuid.optional().openapi({ description: "Set it to make retries idempotent." }),
    metadata: Metadata.optional(),
  })
  // Refused here, not by the store: there it would fail the whole group-committed batch.
  .superRefine((item, ctx) => {
    const found = findUnstorableText(item);
    if (found) ctx.addIssue({ code: "custom", message: found.message, path: found.path });
  });

/** A stream type as streams are created with it; a listing's `type` filter takes the same. */
const StreamTypeName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "use 1 to 64 letters, digits, '_', '.' or '-'" });

export const AppendBody = z.object({
  events: z
    .array(NewEventInput)
    .min(1, { error: "send at least one event" })
    .max(MAX_EVENTS_PER_APPEND, { error: `send at most ${MAX_EVENTS_PER_APPEND} events per append` }),
  expected_version: ExpectedVersionInput.optional(),
  stream_type: StreamTypeName.optional(),
  if: StateCondition.optional().meta({
    description:
      "Append only if the workflow state the append meets matches: every field given must equal the state's " +
      "(`status`; `current_step`, null for none; `steps`: step id → status, null for no such step; `context`: key → " +
      `JSON value; at most ${MAX_CONDITION_ENTRIES} steps and ${MAX_CONDITION_ENTRIES} context keys). Checked by the ` +
      "stream's actor against the state as the appends decided before it in the same batch left it, after the " +
      "expected version (both must hold). Otherwise 412 `condition_failed` with `state`: the state's values of " +
      "the fields the condition names (an absent context key left out), `unmet` (JSON pointers) and `version`.",
    example: { current_step: "review", steps: { review: "active" } },
  }),
  turn: z
    .string()
    .regex(/^[0-9]{1,15}\.[0-9a-f]{16}$/, { error: "send back the turn a 409 gave, as it was given" })
    .optional()
    .meta({
      description:
        "The `turn` a 409 for an exact expected version gave, sent back with the retry. Writers that race on " +
        "exact versions are then served in the order they were first refused: while a writer refused earlier " +
        "is still retrying with its turn, an append that holds a later turn, or none, is held by the stream's " +
        "actor and then answered 409 with the version to retry at and a turn of its own. Until some writer " +
        "sends a turn back nobody is held; a turn never sent back stops holding others 150 ms after its 409.",
      example: "17.3f2a9c1d0b4e5a6f",
    }),
});

/**
 * The body of POST /webhooks/:source: an append body (the same events, limits,
 * expected_version, stream_type and if) that names its stream. A delivery is known by
 * its source and webhook-id and its events get new ids, so an event may not bring its own.
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
          message:
            "leave event_id out: a webhook's events get new ids, and its webhook-id makes a redelivery idempotent",
        });
      }
    }
  })
  .openapi({
    description:
      "Like the body of POST /streams/{streamId}/events, plus `stream_id`; `events[].event_id` is not accepted.",
  });

export const AppendResponse = z.object({
  stream_id: z.string(),
  stream_type: z.string(),
  version: z.number().int(),
  versions: z.array(z.number().int()),
  event_ids: z.array(z.string()),
  idempotent: z.boolean(),
});

export const wholeNumber = (what: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, { error: `${what} must be a whole number` })
    .transform(Number);

export const pageLimit = wholeNumber("limit")
  .pipe(
    z
      .number()
      .min(1)
      .max(MAX_PAGE_SIZE, { error: `limit is at most ${MAX_PAGE_SIZE}` }),
  )
  .optional()
  .default(DEFAULT_PAGE_SIZE);

export const ReadEventsQuery = z.object({
  from: wholeNumber("from").optional(),
  limit: pageLimit,
  direction: z.enum(["forward", "backward"]).optional().default("forward"),
});

export const EventsPage = z.object({
  stream_id: z.string(),
  events: z.array(StoredEvent),
  next: z.string().nullable().openapi({ description: "The URL of the next page, or null at the end." }),
});

export const StreamHeadResponse = z.object({
  stream_id: z.string(),
  stream_type: z.string(),
  version: z.number().int(),
  status: WorkflowStatus,
  created_at: z.string(),
  updated_at: z.string(),
});

export const StateQuery = z.object({ at: wholeNumber("at").optional() });

export const StateResponse = z.object({
  stream_id: z.string(),
  version: z.number().int(),
  state: WorkflowState,
});

export const STREAMS_ORDERS = ["stream_id", "newest"] as const;

export const ListStreamsQuery = z
  .object({
    // Only what can name a stream type: other text (U+0000, which PostgreSQL cannot even compare) is refused here.
    type: StreamTypeName.optional(),
    status: WorkflowStatus.optional(),
    order: z
      .enum(STREAMS_ORDERS, { error: "order is stream_id (the default) or newest" })
      .optional()
      .default("stream_id")
      .openapi({
        description:
          "stream_id (the default): by stream id. newest: newest created first (ties, streams created at the same microsecond, by stream id descending).",
      }),
    cursor: StreamsCursorParameter,
    limit: pageLimit,
  })
  .superRefine((query, ctx) => {
    if (query.cursor === undefined || query.cursor.order === query.order) return;
    ctx.addIssue({
      code: "custom",
      path: ["cursor"],
      message:
        query.order === "newest"
          ? "is a cursor of stream id order, not of order=newest: pass back the next_cursor of a page read with order=newest"
          : "is a cursor of order=newest: pass order=newest with it, or a stream id for stream id order",
    });
  });

export const StreamsPage = z.object({
  streams: z.array(StreamHeadResponse),
  next_cursor: z.string().nullable().openapi({
    description:
      "`cursor` for the next page (with the same `order` and filters), or null after the last page.",
  }),
});

export const HealthResponse = z.object({ status: z.literal("ok"), database: z.literal("ok") });

export const ProblemResponse = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
  })
  .catchall(z.unknown())
  .openapi("Problem");
