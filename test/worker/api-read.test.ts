import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { PgEventStore } from "../../src/events/postgres";
import { WorkflowEvent, type WorkflowEventInput } from "../../src/events/types";
import { applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import { contextUpdated, started, stepActivated, workflowCompleted } from "../support/event-builders";
import {
  api,
  appendBatches,
  appendOk,
  type EventsPageResult,
  expectProblem,
  getJson,
  type HealthResult,
  problemCode,
  type StateResult,
  type StreamHead,
  type StreamsPageResult,
} from "../support/http-client";

// The read routes through real HTTP requests into the Worker: heads, pages of events,
// state now and at any version, the stream list, health and the OpenAPI document.

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** A stream with `count` events: workflow_started then context updates k1..k(count-1). */
async function streamWith(count: number, streamType?: string): Promise<string> {
  const streamId = crypto.randomUUID();
  await appendOk(streamId, {
    events: [
      { event: started() },
      ...Array.from({ length: count - 1 }, (_, index) => ({
        event: contextUpdated(`k${index + 1}`, index + 1),
      })),
    ],
    ...(streamType === undefined ? {} : { stream_type: streamType }),
  });
  return streamId;
}

const versionsOf = (page: EventsPageResult) => page.events.map((event) => event.version);

describe("GET /streams/:streamId", () => {
  it("answers the head: version, type, status and timestamps, with the version as ETag", async () => {
    const streamId = crypto.randomUUID();
    const type = `heads-${crypto.randomUUID().slice(0, 8)}`;
    await appendOk(streamId, {
      events: [{ event: started() }, { event: stepActivated("a") }],
      stream_type: type,
    });
    const response = await api(`/streams/${streamId}`);
    expect(response.headers.get("etag")).toBe('"2"');
    const head = (await response.json()) as StreamHead;
    expect(response.status).toBe(200);
    expect(head).toEqual({
      stream_id: streamId,
      stream_type: type,
      version: 2,
      status: "running",
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
    expect(Date.parse(head.updated_at)).toBeGreaterThanOrEqual(Date.parse(head.created_at));

    await appendOk(streamId, { events: [{ event: workflowCompleted() }] });
    const completed = await getJson<StreamHead>(`/streams/${streamId}`);
    expect(completed).toMatchObject({ version: 3, status: "completed", created_at: head.created_at });
    expect(Date.parse(completed.updated_at)).toBeGreaterThanOrEqual(Date.parse(head.updated_at));
  });

  it("answers 404 with a problem for a stream that has no events", async () => {
    const streamId = crypto.randomUUID();
    const problem = await expectProblem(
      await api(`/streams/${streamId}`),
      404,
      new RegExp(`Stream ${streamId} has no events`),
    );
    expect(problemCode(problem)).toBe("stream_not_found");
    expect(problem.instance).toBe(`/streams/${streamId}`);
  });

  it("finds a stream named with an upper-case id", async () => {
    const streamId = await streamWith(2);
    const head = await getJson<StreamHead>(`/streams/${streamId.toUpperCase()}`);
    expect(head).toMatchObject({ stream_id: streamId, version: 2 });
  });
});

describe("GET /streams/:streamId/events", () => {
  it("pages forward with next links to the end", async () => {
    const streamId = await streamWith(7);
    const first = await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=3`);
    expect(first.stream_id).toBe(streamId);
    expect(versionsOf(first)).toEqual([1, 2, 3]);
    expect(first.next).toBe(`/streams/${streamId}/events?from=4&limit=3&direction=forward`);

    const second = await getJson<EventsPageResult>(first.next ?? "");
    expect(versionsOf(second)).toEqual([4, 5, 6]);
    expect(second.next).toBe(`/streams/${streamId}/events?from=7&limit=3&direction=forward`);

    const last = await getJson<EventsPageResult>(second.next ?? "");
    expect(versionsOf(last)).toEqual([7]);
    expect(last.next).toBeNull();

    const [event] = last.events;
    expect(event).toEqual({
      event_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      stream_id: streamId,
      stream_type: "workflow",
      version: 7,
      event: contextUpdated("k6", 6),
      metadata: {},
      occurred_at: expect.stringMatching(ISO),
      global_position: expect.any(Number),
    });
  });

  it("starts at from and ends at the head", async () => {
    const streamId = await streamWith(5);
    const page = await getJson<EventsPageResult>(`/streams/${streamId}/events?from=3`);
    expect(versionsOf(page)).toEqual([3, 4, 5]);
    expect(page.next).toBeNull();
    const beyond = await getJson<EventsPageResult>(`/streams/${streamId}/events?from=6`);
    expect(beyond).toEqual({ stream_id: streamId, events: [], next: null });
  });

  it("pages backward from the head, or from `from`, down to version 1", async () => {
    const streamId = await streamWith(7);
    const first = await getJson<EventsPageResult>(`/streams/${streamId}/events?direction=backward&limit=3`);
    expect(versionsOf(first)).toEqual([7, 6, 5]);
    expect(first.next).toBe(`/streams/${streamId}/events?from=4&limit=3&direction=backward`);
    const second = await getJson<EventsPageResult>(first.next ?? "");
    expect(versionsOf(second)).toEqual([4, 3, 2]);
    expect(second.next).toBe(`/streams/${streamId}/events?from=1&limit=3&direction=backward`);
    const last = await getJson<EventsPageResult>(second.next ?? "");
    expect(versionsOf(last)).toEqual([1]);
    expect(last.next).toBeNull();

    const fromTwo = await getJson<EventsPageResult>(`/streams/${streamId}/events?direction=backward&from=2`);
    expect(versionsOf(fromTwo)).toEqual([2, 1]);
    expect(fromTwo.next).toBeNull();
    const exact = await getJson<EventsPageResult>(
      `/streams/${streamId}/events?direction=backward&from=1&limit=1`,
    );
    expect(versionsOf(exact)).toEqual([1]);
    expect(exact.next).toBeNull();
  });

  it("reads 100 events by default and at most 1000", async () => {
    const streamId = await streamWith(120);
    const first = await getJson<EventsPageResult>(`/streams/${streamId}/events`);
    expect(versionsOf(first)).toEqual(Array.from({ length: 100 }, (_, index) => index + 1));
    expect(first.next).toBe(`/streams/${streamId}/events?from=101&limit=100&direction=forward`);
    const all = await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=1000`);
    expect(all.events).toHaveLength(120);
    expect(all.next).toBeNull();
  });

  it("answers an empty page for a stream with no events", async () => {
    const streamId = crypto.randomUUID();
    expect(await getJson<EventsPageResult>(`/streams/${streamId}/events`)).toEqual({
      stream_id: streamId,
      events: [],
      next: null,
    });
  });
});

// ---------------------------------------------------------------------------------
// State and time travel on a stream of 120 varied events, appended in batches that
// land on and step over snapshot boundaries (SNAPSHOT_INTERVAL = 50).

const BATCHES = [1, 7, 30, 12, 1, 25, 23, 2, 19]; // heads: 1 8 38 50 51 76 99 101 120
const TOTAL = BATCHES.reduce((sum, size) => sum + size, 0);

/** A valid, deterministic workflow of `count` events touching every state field the rules have. */
function variedWorkflow(count: number): WorkflowEventInput[] {
  const base = Date.UTC(2026, 2, 1, 8, 0, 0);
  let tick = 0;
  // Every other timestamp carries an offset and nanoseconds, so normalisation matters.
  const at = () => {
    tick++;
    const instant = new Date(base + tick * 61_000).toISOString().slice(0, 19);
    return tick % 2 === 0 ? `${instant}.${String(tick).padStart(9, "0")}Z` : `${instant}Z`;
  };
  const events: WorkflowEventInput[] = [
    { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "cfg-7", started_at: at() },
  ];
  for (let step = 0; events.length < count; step++) {
    const id = `step-${step}`;
    const cycle: WorkflowEventInput[] = [
      { type: "step_activated", step_id: id, assigned_to: [crypto.randomUUID()], activated_at: at() },
      {
        type: "context_updated",
        key: `key-${step % 7}`,
        value: { step, list: [step, null] },
        updated_at: at(),
      },
      {
        type: "consensus_calculated",
        step_id: id,
        agreement: step / 8,
        metric: "majority",
        resolved_by: step % 2 === 0 ? "vote" : null,
        calculated_at: at(),
      },
      step % 3 === 2
        ? { type: "step_failed", step_id: id, error: `boom ${step}`, retries: step % 256, failed_at: at() }
        : { type: "step_completed", step_id: id, result: { n: step }, completed_at: at() },
      {
        type: "transition_occurred",
        from_step: id,
        to_step: `step-${step + 1}`,
        condition_met: step % 2 === 0 ? `c${step}` : null,
        occurred_at: at(),
      },
    ];
    if (step % 5 === 4) {
      cycle.push({
        type: "step_skipped",
        step_id: `optional-${step}`,
        reason: "not needed",
        skipped_at: at(),
      });
    }
    if (step % 4 === 3) {
      cycle.push({ type: "workflow_failed", error: `paused ${step}`, recoverable: true, failed_at: at() });
    }
    events.push(...cycle);
  }
  return events.slice(0, count);
}

describe("GET /streams/:streamId/state", () => {
  const streamId = crypto.randomUUID();
  const inputs = variedWorkflow(TOTAL);
  const canonical = inputs.map((event) => WorkflowEvent.parse(event));
  const stateAt = (version: number) => applyEvents(emptyWorkflowState(), canonical.slice(0, version));

  it("has a fixture the rules accept", () => {
    expect(stateAt(TOTAL).version).toBe(TOTAL);
  });

  beforeAll(async () => {
    let offset = 0;
    const batches = BATCHES.map((size) => {
      const batch = inputs.slice(offset, offset + size);
      offset += size;
      return batch;
    });
    const last = await appendBatches(streamId, batches);
    expect(last?.version).toBe(TOTAL);
  });

  it("stores the events exactly as sent (timestamps normalised)", async () => {
    const page = await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=1000`);
    expect(page.events.map((event) => event.event)).toEqual(canonical);
  });

  it("wrote snapshots where the batches carried the version over 50 and 100", async () => {
    const pool = createPool(readDatabaseSettings(env), { max: 1 });
    try {
      const store = new PgEventStore(pool);
      expect((await store.getLatestSnapshot(streamId))?.version).toBe(101);
      expect((await store.getLatestSnapshot(streamId, 100))?.version).toBe(50);
      expect(await store.getLatestSnapshot(streamId, 49)).toBeNull();
    } finally {
      await pool.end();
    }
  });

  it("answers the current state with the version as ETag", async () => {
    const response = await api(`/streams/${streamId}/state`);
    expect(response.headers.get("etag")).toBe(`"${TOTAL}"`);
    const body = (await response.json()) as StateResult;
    expect(response.status).toBe(200);
    const expected = stateAt(TOTAL);
    expect(body).toEqual({ stream_id: streamId, version: TOTAL, state: expected });
    // The fixture really exercises the whole state.
    expect(expected.status).toBe("running");
    expect(Object.keys(expected.steps).length).toBeGreaterThan(20);
    expect(expected.last_transition).not.toBeNull();
  });

  it("answers 304 without a body when If-None-Match is the current ETag", async () => {
    const notModified = await api(`/streams/${streamId}/state`, {
      headers: { "if-none-match": `"${TOTAL}"` },
    });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get("etag")).toBe(`"${TOTAL}"`);
    expect(await notModified.text()).toBe("");

    const stale = await api(`/streams/${streamId}/state`, { headers: { "if-none-match": `"${TOTAL - 1}"` } });
    expect(stale.status).toBe(200);
    expect(((await stale.json()) as StateResult).version).toBe(TOTAL);
  });

  it.each([1, 8, 49, 50, 51, 99, 100, 101, 119, TOTAL])(
    "at=%i equals applyEvents over the first events (time travel across snapshots)",
    async (version) => {
      const response = await api(`/streams/${streamId}/state?at=${version}`);
      expect(response.headers.get("etag")).toBe(`"${version}"`);
      const body = (await response.json()) as StateResult;
      expect(response.status).toBe(200);
      expect(body).toEqual({ stream_id: streamId, version, state: stateAt(version) });
    },
  );

  it('answers 304 for at=N with If-None-Match "N"', async () => {
    const response = await api(`/streams/${streamId}/state?at=50`, { headers: { "if-none-match": '"50"' } });
    expect(response.status).toBe(304);
    await response.body?.cancel();
  });

  it("answers 404 with a problem for a version beyond the head", async () => {
    const problem = await expectProblem(
      await api(`/streams/${streamId}/state?at=${TOTAL + 1}`),
      404,
      new RegExp(`has no version ${TOTAL + 1}: it is at version ${TOTAL}`),
    );
    expect(problemCode(problem)).toBe("version_not_found");
    expect(problem).toMatchObject({ requested: TOTAL + 1, version: TOTAL });
    await expectProblem(await api(`/streams/${streamId}/state?at=999999999999999`), 404, /has no version/);
  });

  it("answers 404 with a problem for a stream with no events", async () => {
    const unknown = crypto.randomUUID();
    const problem = await expectProblem(await api(`/streams/${unknown}/state`), 404, /has no events/);
    expect(problemCode(problem)).toBe("stream_not_found");
    await expectProblem(await api(`/streams/${unknown}/state?at=1`), 404, /has no events/);
  });
});

describe("GET /streams", () => {
  const type = `api-list-${crypto.randomUUID()}`;
  const ids: string[] = [];
  const completed: string[] = [];

  beforeAll(async () => {
    for (let index = 0; index < 5; index++) {
      const streamId = await streamWith(2, type);
      ids.push(streamId);
      if (index % 2 === 0) {
        await appendOk(streamId, { events: [{ event: workflowCompleted() }] });
        completed.push(streamId);
      }
    }
    ids.sort();
    completed.sort();
  });

  it("lists the streams of a type in stream id order, with their heads", async () => {
    const page = await getJson<StreamsPageResult>(`/streams?type=${type}`);
    expect(page.next_cursor).toBeNull();
    expect(page.streams.map((stream) => stream.stream_id)).toEqual(ids);
    const first = page.streams.find((stream) => stream.stream_id === completed[0]);
    expect(first).toEqual({
      stream_id: completed[0],
      stream_type: type,
      version: 3,
      status: "completed",
      created_at: expect.stringMatching(ISO),
      updated_at: expect.stringMatching(ISO),
    });
  });

  it("filters by status", async () => {
    const done = await getJson<StreamsPageResult>(`/streams?type=${type}&status=completed`);
    expect(done.streams.map((stream) => stream.stream_id)).toEqual(completed);
    expect(done.streams.every((stream) => stream.status === "completed" && stream.version === 3)).toBe(true);
    const running = await getJson<StreamsPageResult>(`/streams?type=${type}&status=running`);
    expect(running.streams.map((stream) => stream.stream_id)).toEqual(
      ids.filter((id) => !completed.includes(id)),
    );
    const pending = await getJson<StreamsPageResult>(`/streams?type=${type}&status=pending`);
    expect(pending).toEqual({ streams: [], next_cursor: null });
  });

  it("pages with next_cursor", async () => {
    const first = await getJson<StreamsPageResult>(`/streams?type=${type}&limit=2`);
    expect(first.streams.map((stream) => stream.stream_id)).toEqual(ids.slice(0, 2));
    expect(first.next_cursor).toBe(ids[1]);
    const second = await getJson<StreamsPageResult>(
      `/streams?type=${type}&limit=2&cursor=${first.next_cursor}`,
    );
    expect(second.streams.map((stream) => stream.stream_id)).toEqual(ids.slice(2, 4));
    expect(second.next_cursor).toBe(ids[3]);
    const third = await getJson<StreamsPageResult>(
      `/streams?type=${type}&limit=2&cursor=${second.next_cursor}`,
    );
    expect(third.streams.map((stream) => stream.stream_id)).toEqual(ids.slice(4));
    expect(third.next_cursor).toBeNull();
  });

  it("answers an empty page for a type nobody uses", async () => {
    expect(await getJson<StreamsPageResult>(`/streams?type=nobody-${crypto.randomUUID()}`)).toEqual({
      streams: [],
      next_cursor: null,
    });
  });
});

describe("GET /healthz and /openapi.json", () => {
  it("reports the Worker and the database healthy", async () => {
    expect(await getJson<HealthResult>("/healthz")).toEqual({ status: "ok", database: "ok" });
  });

  it("serves an OpenAPI 3.1 document listing every route", async () => {
    interface Operation {
      responses: Record<string, unknown>;
      parameters?: { name: string; in: string }[];
    }
    interface Document {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, Operation>>;
      components?: { schemas?: Record<string, unknown> };
    }
    const doc = await getJson<Document>("/openapi.json");
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "glyph-streams", version: "0.1.0" });
    const methods = Object.fromEntries(
      Object.entries(doc.paths).map(([path, item]) => [path, Object.keys(item).sort()]),
    );
    // Every route of this API (others, such as the watch route, may be listed too).
    expect(methods).toMatchObject({
      "/healthz": ["get"],
      "/streams": ["get"],
      "/streams/{streamId}": ["get"],
      "/streams/{streamId}/events": ["get", "post"],
      "/streams/{streamId}/state": ["get"],
    });
    const append = doc.paths["/streams/{streamId}/events"]?.post;
    expect(Object.keys(append?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "201", "400", "409", "413", "415", "422", "503"]),
    );
    expect(append?.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "streamId", in: "path" })]),
    );
    const list = doc.paths["/streams"]?.get;
    expect(list?.parameters?.map((parameter) => parameter.name)).toEqual(
      expect.arrayContaining(["cursor", "limit", "status", "type"]),
    );
    expect(doc.components?.schemas).toHaveProperty("Problem");
  });
});
