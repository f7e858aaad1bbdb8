import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { WATCH_PROTOCOL, WatchServerMessage } from "../../src/actor/watch-messages";
import { StoredEvent } from "../../src/events/types";
import { FeedWatchServerMessage } from "../../src/feed/feed-messages";
import { EventsPage, StateResponse, StreamsPage } from "../../src/http/schemas";
import { emptyWorkflowState, WorkflowStatus } from "../../src/state/workflow-state";

// The inspector's hand-written checks (public/inspect/checks.js, plain JavaScript with
// no zod) against the server's own schemas: what the schemas produce is accepted, what
// they refuse in the fields the page shows is refused, and the constants it repeats are
// the server's. Also: every asset is under /inspect/, so none can answer an API path.

const PUBLIC = fileURLToPath(new URL("../../public/", import.meta.url));

interface Checks {
  STATUSES: string[];
  WATCH_PROTOCOL: string;
  ProtocolError: new (what: string) => Error;
  readStreamHead(value: unknown): unknown;
  readStreamsPage(value: unknown): unknown;
  readStoredEvent(value: unknown): unknown;
  readEventsPage(value: unknown): unknown;
  readStateAt(value: unknown): unknown;
  readWatchMessage(data: unknown): unknown;
  readFeedMessage(data: unknown): unknown;
}

// Imported by address: the file is served as written and has no TypeScript declarations.
const checks = (await import(pathToFileURL(join(PUBLIC, "inspect/checks.js")).href)) as Checks;

const STREAM = "4a7d1ed4-1b53-4f5c-9b7e-2f0f4c8f3b10";
const head = {
  stream_id: STREAM,
  stream_type: "workflow",
  version: 3,
  status: "running",
  created_at: "2026-11-30T10:00:00.000000Z",
  updated_at: "2026-11-30T10:00:01.250000Z",
};
const stored = StoredEvent.parse({
  event_id: "9c1b6a3e-2f4d-4e5a-8b7c-6d5e4f3a2b1c",
  stream_id: STREAM,
  stream_type: "workflow",
  version: 2,
  event: {
    type: "step_activated",
    step_id: "review",
    assigned_to: [],
    activated_at: "2026-11-30T10:00:01.25Z",
  },
  metadata: { by: "alice" },
  occurred_at: "2026-11-30T10:00:01.25Z",
  global_position: 41,
});

describe("the inspector's checks", () => {
  it("repeat the server's statuses and subprotocol", () => {
    expect(checks.STATUSES).toEqual(WorkflowStatus.options);
    expect(checks.WATCH_PROTOCOL).toBe(WATCH_PROTOCOL);
  });

  it("accept what the server's schemas produce, unchanged", () => {
    const page = StreamsPage.parse({ streams: [head], next_cursor: STREAM });
    expect(checks.readStreamsPage(page)).toEqual(page);
    expect(checks.readStreamsPage({ streams: [], next_cursor: null })).toEqual({
      streams: [],
      next_cursor: null,
    });
    const events = EventsPage.parse({ stream_id: STREAM, events: [stored], next: null });
    expect(checks.readEventsPage(events)).toEqual(events);
    const state = StateResponse.parse({ stream_id: STREAM, version: 0, state: emptyWorkflowState() });
    expect(checks.readStateAt(state)).toEqual(state);

    const frames: unknown[] = [
      { type: "event", event: stored },
      { type: "caught_up", version: 2 },
      { type: "pong" },
      { type: "error", code: "too_many_watchers", message: "This stream has 1000 watchers." },
    ];
    for (const frame of frames) {
      const text = JSON.stringify(WatchServerMessage.parse(frame));
      expect(checks.readWatchMessage(text)).toEqual(JSON.parse(text));
    }
    const feedFrames: unknown[] = [
      { type: "event", event: { ...stored, checkpoint: "NzQxLjE" } },
      { type: "caught_up", checkpoint: "NzQyLjM" },
      { type: "started", checkpoint: "NzQyLjM" },
      { type: "pong" },
      { type: "error", code: "unavailable", message: "The database is unavailable." },
    ];
    for (const frame of feedFrames) {
      const text = JSON.stringify(FeedWatchServerMessage.parse(frame));
      expect(checks.readFeedMessage(text)).toEqual(JSON.parse(text));
    }
    // Every message the feed's socket can send is among them.
    expect(new Set(feedFrames.map((frame) => (frame as { type: string }).type))).toEqual(
      new Set(FeedWatchServerMessage.options.map((option) => option.shape.type.value)),
    );
  });

  it("refuse answers whose shown fields are not what the schemas promise, saying which", () => {
    const refused: Array<[keyof Checks, unknown, RegExp]> = [
      ["readStreamHead", { ...head, status: "paused" }, /status is unknown/],
      ["readStreamHead", { ...head, version: -1 }, /version is not a whole number/],
      ["readStreamHead", { ...head, version: 1.5 }, /version is not a whole number/],
      [
        "readStreamsPage",
        { streams: [{ ...head, stream_id: 7 }], next_cursor: null },
        /streams\[0\]\.stream_id/,
      ],
      ["readStreamsPage", { streams: [] }, /next_cursor is not a string/],
      ["readStoredEvent", { ...stored, version: 0 }, /version is not a whole number of at least 1/],
      ["readStoredEvent", { ...stored, event: { step_id: "review" } }, /event\.event\.type/],
      [
        "readStoredEvent",
        JSON.parse(JSON.stringify({ ...stored, metadata: undefined })),
        /metadata is missing/,
      ],
      ["readEventsPage", { events: {}, next: null }, /events is not a list/],
      ["readStateAt", { stream_id: STREAM, version: 1, state: [] }, /state is not an object/],
      ["readWatchMessage", "{not json", /not JSON/],
      ["readWatchMessage", new ArrayBuffer(2), /binary frame/],
      ["readWatchMessage", '{"type":"surprise"}', /unknown type/],
      ["readWatchMessage", '{"type":"caught_up","version":"3"}', /version is not a whole number/],
      ["readFeedMessage", JSON.stringify({ type: "event", event: stored }), /checkpoint is not a string/],
      ["readFeedMessage", '{"type":"caught_up","version":3}', /checkpoint is not a string/],
      ["readFeedMessage", '{"type":"started"}', /checkpoint is not a string/],
      ["readFeedMessage", '{"type":"started","checkpoint":7}', /checkpoint is not a string/],
      // Only the feed's socket starts with `started`: the stream's knows no such message.
      ["readWatchMessage", '{"type":"started","checkpoint":"NzQyLjM"}', /unknown type/],
    ];
    for (const [reader, value, message] of refused) {
      const read = checks[reader] as (value: unknown) => unknown;
      expect(() => read(value), `${reader}(${JSON.stringify(value)})`).toThrow(checks.ProtocolError);
      expect(() => read(value)).toThrow(message);
    }
  });
});

it("every static asset is under /inspect/ (or is the _headers file), so none can answer an API path", () => {
  const files = readdirSync(PUBLIC, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(PUBLIC, join(entry.parentPath, entry.name)));
  expect(files.length).toBeGreaterThan(1);
  for (const file of files) expect(file === "_headers" || file.startsWith("inspect/"), file).toBe(true);
});
