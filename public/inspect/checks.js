// @ts-check
// What the inspector accepts from the API, checked by hand (no zod without a build step).
// Each reader returns the value it was given, typed, or throws ProtocolError naming the
// field that is not what the server's schemas promise (src/http/schemas.ts,
// src/actor/watch-messages.ts, src/feed/feed-messages.ts). Only the fields the page
// shows are checked; the rest is displayed as the JSON it is.

/** The workflow statuses (src/state/workflow-state.ts, WorkflowStatus; test/unit/inspector-checks.test.ts compares). */
export const STATUSES = ["pending", "running", "completed", "failed"];

/** The subprotocol both watch sockets speak (src/actor/watch-messages.ts, WATCH_PROTOCOL). */
export const WATCH_PROTOCOL = "glyph-streams.v1";

/**
 * @typedef {{ stream_id: string, stream_type: string, version: number, status: string,
 *   created_at: string, updated_at: string }} StreamHead
 * @typedef {{ streams: StreamHead[], next_cursor: string | null }} StreamsPage
 * @typedef {{ event_id: string, stream_id: string, stream_type: string, version: number,
 *   event: { type: string } & Record<string, unknown>, metadata: unknown, occurred_at: string }} StoredEvent
 * @typedef {StoredEvent & { checkpoint: string }} FeedEvent
 * @typedef {{ events: StoredEvent[], next: string | null }} EventsPage
 * @typedef {{ stream_id: string, version: number, state: Record<string, unknown> }} StateAt
 * @typedef {{ type: "event", event: StoredEvent } | { type: "caught_up", version: number }
 *   | { type: "pong" } | { type: "error", code: string, message: string }} WatchMessage
 * @typedef {{ type: "event", event: FeedEvent } | { type: "caught_up", checkpoint: string }
 *   | { type: "started", checkpoint: string }
 *   | { type: "pong" } | { type: "error", code: string, message: string }} FeedMessage
 */

export class ProtocolError extends Error {
  /** @param {string} what */
  constructor(what) {
    super(`The server's answer was not understood (${what}).`);
    this.name = "ProtocolError";
  }
}

/**
 * @param {unknown} value
 * @param {string} where
 * @returns {Record<string, unknown>}
 */
function object(value, where) {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${where} is not an object`);
  }
  return /** @type {Record<string, unknown>} */ (value);
}

/** @param {Record<string, unknown>} value @param {string} key @param {string} where */
function text(value, key, where) {
  const field = value[key];
  if (typeof field !== "string") throw new ProtocolError(`${where}.${key} is not a string`);
  return field;
}

/** @param {Record<string, unknown>} value @param {string} key @param {string} where @param {number} min */
function whole(value, key, where, min) {
  const field = value[key];
  if (typeof field !== "number" || !Number.isSafeInteger(field) || field < min) {
    throw new ProtocolError(`${where}.${key} is not a whole number of at least ${min}`);
  }
  return field;
}

/** @param {Record<string, unknown>} value @param {string} key @param {string} where */
function list(value, key, where) {
  const field = value[key];
  if (!Array.isArray(field)) throw new ProtocolError(`${where}.${key} is not a list`);
  return field;
}

/** @param {Record<string, unknown>} value @param {string} key @param {string} where */
function textOrNull(value, key, where) {
  return value[key] === null ? null : text(value, key, where);
}

/** @param {unknown} value @param {string} [where] @returns {StreamHead} */
export function readStreamHead(value, where = "stream") {
  const head = object(value, where);
  text(head, "stream_id", where);
  text(head, "stream_type", where);
  whole(head, "version", where, 0);
  if (!STATUSES.includes(text(head, "status", where))) throw new ProtocolError(`${where}.status is unknown`);
  text(head, "created_at", where);
  text(head, "updated_at", where);
  return /** @type {StreamHead} */ (head);
}

/** @param {unknown} value @returns {StreamsPage} */
export function readStreamsPage(value) {
  const page = object(value, "page");
  for (const [index, head] of list(page, "streams", "page").entries())
    readStreamHead(head, `streams[${index}]`);
  textOrNull(page, "next_cursor", "page");
  return /** @type {StreamsPage} */ (page);
}

/** @param {unknown} value @param {string} [where] @returns {StoredEvent} */
export function readStoredEvent(value, where = "event") {
  const stored = object(value, where);
  text(stored, "event_id", where);
  text(stored, "stream_id", where);
  text(stored, "stream_type", where);
  whole(stored, "version", where, 1);
  text(object(stored.event, `${where}.event`), "type", `${where}.event`);
  if (!("metadata" in stored)) throw new ProtocolError(`${where}.metadata is missing`);
  text(stored, "occurred_at", where);
  return /** @type {StoredEvent} */ (stored);
}

/** @param {unknown} value @returns {EventsPage} */
export function readEventsPage(value) {
  const page = object(value, "page");
  for (const [index, event] of list(page, "events", "page").entries())
    readStoredEvent(event, `events[${index}]`);
  textOrNull(page, "next", "page");
  return /** @type {EventsPage} */ (page);
}

/** @param {unknown} value @returns {StateAt} */
export function readStateAt(value) {
  const answer = object(value, "answer");
  text(answer, "stream_id", "answer");
  whole(answer, "version", "answer", 0);
  object(answer.state, "answer.state");
  return /** @type {StateAt} */ (answer);
}

/**
 * A frame of either watch socket, parsed; `event` says how to read an event message.
 * @template {StoredEvent} E
 * @param {unknown} data
 * @param {(value: unknown) => E} event
 */
function readFrame(data, event) {
  if (typeof data !== "string") throw new ProtocolError("a binary frame");
  /** @type {unknown} */
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new ProtocolError("a frame that is not JSON");
  }
  const message = object(parsed, "message");
  switch (message.type) {
    case "event":
      return { type: /** @type {const} */ ("event"), event: event(message.event) };
    case "pong":
      return { type: /** @type {const} */ ("pong") };
    case "error":
      return {
        type: /** @type {const} */ ("error"),
        code: text(message, "code", "message"),
        message: text(message, "message", "message"),
      };
    case "caught_up":
      return { type: /** @type {const} */ ("caught_up"), message };
    case "started":
      return { type: /** @type {const} */ ("started"), message };
    default:
      throw new ProtocolError("a message of unknown type");
  }
}

/** A frame of GET /streams/:id/watch. @param {unknown} data @returns {WatchMessage} */
export function readWatchMessage(data) {
  const frame = readFrame(data, (value) => readStoredEvent(value));
  if (frame.type === "started") throw new ProtocolError("a message of unknown type");
  if (frame.type !== "caught_up") return frame;
  return { type: "caught_up", version: whole(frame.message, "version", "message", 0) };
}

/** A frame of GET /watch. @param {unknown} data @returns {FeedMessage} */
export function readFeedMessage(data) {
  const frame = readFrame(data, (value) => {
    const stored = readStoredEvent(value);
    text(/** @type {Record<string, unknown>} */ (stored), "checkpoint", "event");
    return /** @type {FeedEvent} */ (stored);
  });
  if (frame.type === "started") {
    return { type: "started", checkpoint: text(frame.message, "checkpoint", "message") };
  }
  if (frame.type !== "caught_up") return frame;
  return { type: "caught_up", checkpoint: text(frame.message, "checkpoint", "message") };
}
