import { z } from "@hono/zod-openapi";
import type { NewestStreamsKey } from "../events/store";
import { Uuid } from "../events/wire";

// The cursors of GET /streams. In stream id order (the default) the cursor is the last
// stream's id, as it always was. In newest-first order (order=newest) it is the last
// stream's place in that order, (created_at to the microsecond, stream_id), as base64url
// of "<created_at>,<stream_id>": opaque to clients, with one spelling, so a cursor
// this server did not make is a 400 rather than a page from somewhere else.

export type StreamsCursor =
  | { order: "stream_id"; streamId: string }
  | { order: "newest"; key: NewestStreamsKey };

const CREATED_AT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
/** 0001-01-01T00:00:00Z: the first instant of a four-digit year that PostgreSQL stores. */
const FIRST_INSTANT_MS = Date.parse("0001-01-01T00:00:00Z");
const isUuid = (text: string) => Uuid.safeParse(text).success;

export function encodeNewestCursor(key: NewestStreamsKey): string {
  return btoa(`${key.createdAt},${key.streamId}`)
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** The key a newest-first cursor spells, or undefined when it is not one this server made. */
export function decodeNewestCursor(text: string): NewestStreamsKey | undefined {
  if (!/^[A-Za-z0-9_-]{1,96}$/.test(text)) return undefined;
  let decoded: string;
  try {
    decoded = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return undefined;
  }
  const [createdAt = "", streamId = "", ...rest] = decoded.split(",");
  if (rest.length > 0 || !CREATED_AT.test(createdAt) || !isUuid(streamId)) return undefined;
  // A real instant: what Date reads back is what was written (no 30 February, no hour 24),
  // and one PostgreSQL has (it has no year 0, which Date takes: the query would fail, a 503).
  const ms = Date.parse(createdAt);
  if (
    Number.isNaN(ms) ||
    ms < FIRST_INSTANT_MS ||
    new Date(ms).toISOString().slice(0, 23) !== createdAt.slice(0, 23)
  )
    return undefined;
  const key = { createdAt, streamId: streamId.toLowerCase() };
  return encodeNewestCursor(key) === text ? key : undefined;
}

/** `cursor` as sent: a stream id (stream id order) or a newest-first cursor; which order it belongs to is checked beside `order`. */
export const StreamsCursorParameter = z
  .string()
  .transform((text, ctx): StreamsCursor => {
    if (isUuid(text)) return { order: "stream_id", streamId: text.toLowerCase() };
    const key = decodeNewestCursor(text);
    if (key !== undefined) return { order: "newest", key };
    ctx.addIssue({
      code: "custom",
      message:
        "expected a hyphenated UUID (the next_cursor of a page in stream id order) or the next_cursor of a page with order=newest: pass back exactly the next_cursor of the previous page, or leave it out to start",
    });
    return z.NEVER;
  })
  .optional()
  .openapi({ description: "The next_cursor of the previous page, read in the same order.", type: "string" });
