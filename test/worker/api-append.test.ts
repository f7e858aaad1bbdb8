import { describe, expect, it } from "vitest";
import {
  contextUpdated,
  started,
  stepActivated,
  stepCompleted,
  workflowCompleted,
} from "../support/event-builders";
import {
  type AppendResult,
  api,
  appendEvents,
  appendOk,
  type EventsPageResult,
  expectJson,
  expectNoStream,
  expectProblem,
  expectVersion,
  getJson,
  problemCode,
  type StateResult,
} from "../support/http-client";

// POST /streams/:streamId/events through real HTTP requests into the Worker.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses `queue;dur=1, db;dur=2, ...` into {queue: 1, db: 2, ...}. */
function serverTiming(header: string | null): Record<string, number> {
  expect(header).not.toBeNull();
  const entries = (header ?? "").split(",").map((part) => {
    const match = /^\s*([a-z]+);dur=(\d+(?:\.\d+)?)\s*$/.exec(part);
    expect(match, `malformed Server-Timing entry ${JSON.stringify(part)}`).not.toBeNull();
    return [match?.[1] ?? "", Number(match?.[2])] as const;
  });
  return Object.fromEntries(entries);
}

async function readAll(streamId: string): Promise<EventsPageResult["events"]> {
  return (await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=1000`)).events;
}

describe("a successful append", () => {
  it("creates the stream: 201 with versions, event ids, the new version as ETag, Server-Timing", async () => {
    const streamId = crypto.randomUUID();
    const response = await appendEvents(streamId, { events: [{ event: started() }] });
    const timing = serverTiming(response.headers.get("server-timing"));
    expect(response.headers.get("etag")).toBe('"1"');
    expect(response.headers.get("location")).toBe(`/streams/${streamId}/events?from=1`);
    const body = await expectJson<AppendResult>(response, 201);
    expect(body).toEqual({
      stream_id: streamId,
      stream_type: "workflow",
      version: 1,
      versions: [1],
      event_ids: [expect.stringMatching(UUID)],
      idempotent: false,
    });
    expect(Object.keys(timing)).toEqual(expect.arrayContaining(["queue", "db", "total"]));
    for (const value of Object.values(timing)) expect(value).toBeGreaterThanOrEqual(0);
    expect(timing.total).toBeGreaterThanOrEqual(timing.db ?? Number.NaN);
    expect(timing.total).toBeGreaterThanOrEqual(timing.queue ?? Number.NaN);

    const [stored] = await readAll(streamId);
    expect(stored?.event_id).toBe(body.event_ids[0]);
    await expectVersion(streamId, 1);
  });

  it("appends several events at once, keeping their ids and metadata, in order", async () => {
    const streamId = crypto.randomUUID();
    const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()] as const;
    const first = await appendOk(streamId, {
      events: [
        { event: started(), event_id: ids[0], metadata: { source: "test", trace: [1, 2] } },
        { event: stepActivated("review"), event_id: ids[1] },
        { event: contextUpdated("priority", "high"), event_id: ids[2], metadata: "plain string" },
      ],
    });
    expect(first).toMatchObject({ version: 3, versions: [1, 2, 3], event_ids: ids, idempotent: false });

    const second = await appendOk(streamId, {
      events: [{ event: stepCompleted("review") }, { event: workflowCompleted() }],
    });
    expect(second.versions).toEqual([4, 5]);
    expect(second.version).toBe(5);
    expect(new Set([...ids, ...second.event_ids]).size).toBe(5);

    const events = await readAll(streamId);
    expect(events.map((event) => event.version)).toEqual([1, 2, 3, 4, 5]);
    expect(events.map((event) => event.event_id)).toEqual([...ids, ...second.event_ids]);
    expect(events.map((event) => event.event.type)).toEqual([
      "workflow_started",
      "step_activated",
      "context_updated",
      "step_completed",
      "workflow_completed",
    ]);
    expect(events.map((event) => event.metadata)).toEqual([
      { source: "test", trace: [1, 2] },
      {},
      "plain string",
      {},
      {},
    ]);
    for (const event of events) {
      expect(event.stream_id).toBe(streamId);
      expect(event.stream_type).toBe("workflow");
    }
    const head = await expectVersion(streamId, 5);
    expect(head.status).toBe("completed");
  });

  it("normalises upper-case event ids to lower case", async () => {
    const streamId = crypto.randomUUID();
    const id = crypto.randomUUID();
    const body = await appendOk(streamId, { events: [{ event: started(), event_id: id.toUpperCase() }] });
    expect(body.event_ids).toEqual([id]);
    const repeat = await expectJson<AppendResult>(
      await appendEvents(streamId, { events: [{ event: started(), event_id: id }] }),
      200,
    );
    expect(repeat).toMatchObject({ idempotent: true, versions: [1], event_ids: [id] });
  });

  it("accepts application/json with a charset parameter", async () => {
    const streamId = crypto.randomUUID();
    const response = await appendEvents(
      streamId,
      { events: [{ event: started() }] },
      { "content-type": "Application/JSON; charset=utf-8" },
    );
    expect((await expectJson<AppendResult>(response, 201)).version).toBe(1);
  });

  it("accepts exactly 500 events in one append, crossing snapshot boundaries", async () => {
    const streamId = crypto.randomUUID();
    const events = [
      { event: started() },
      ...Array.from({ length: 499 }, (_, index) => ({ event: contextUpdated(`k${index % 10}`, index) })),
    ];
    const body = await appendOk(streamId, { events, expected_version: "no_stream" });
    expect(body.version).toBe(500);
    expect(body.versions).toEqual(Array.from({ length: 500 }, (_, index) => index + 1));
    expect(new Set(body.event_ids).size).toBe(500);
    const state = await getJson<StateResult>(`/streams/${streamId}/state`);
    expect(state.version).toBe(500);
    expect(state.state.context).toEqual({
      k0: 490,
      k1: 491,
      k2: 492,
      k3: 493,
      k4: 494,
      k5: 495,
      k6: 496,
      k7: 497,
      k8: 498,
      k9: 489,
    });
  });

  it("accepts metadata of exactly 16 KiB of JSON", async () => {
    const streamId = crypto.randomUUID();
    const metadata = "x".repeat(16 * 1024 - 2); // plus the two quotes: 16384 bytes
    await appendOk(streamId, { events: [{ event: started(), metadata }] });
    const [stored] = await readAll(streamId);
    expect(stored?.metadata).toBe(metadata);
  });
});

describe("stream_type", () => {
  it("defaults to workflow and is set by the first append", async () => {
    const streamId = crypto.randomUUID();
    const type = `orders.v2-${crypto.randomUUID().slice(0, 8)}`;
    const body = await appendOk(streamId, { events: [{ event: started() }], stream_type: type });
    expect(body.stream_type).toBe(type);
    const head = await expectVersion(streamId, 1);
    expect(head.stream_type).toBe(type);

    // Later appends may leave it out or repeat it.
    expect((await appendOk(streamId, { events: [{ event: contextUpdated("a", 1) }] })).stream_type).toBe(
      type,
    );
    expect(
      (await appendOk(streamId, { events: [{ event: contextUpdated("b", 2) }], stream_type: type })).version,
    ).toBe(3);
    const [event] = await readAll(streamId);
    expect(event?.stream_type).toBe(type);
  });

  it("answers 409 when an append names another stream_type, and writes nothing", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    const problem = await expectProblem(
      await appendEvents(streamId, { events: [{ event: contextUpdated("a", 1) }], stream_type: "invoices" }),
      409,
      /stream_type "workflow", not "invoices"/,
    );
    expect(problemCode(problem)).toBe("stream_type_mismatch");
    expect(problem.stream_type).toBe("workflow");
    expect(problem.instance).toBe(`/streams/${streamId}/events`);
    await expectVersion(streamId, 1);
  });
});

describe("expected version", () => {
  it("is checked from the body: exact versions, no_stream, stream_exists and any", async () => {
    const streamId = crypto.randomUUID();
    expect(
      (await appendOk(streamId, { events: [{ event: started() }], expected_version: "no_stream" })).version,
    ).toBe(1);
    expect(
      (await appendOk(streamId, { events: [{ event: contextUpdated("a", 1) }], expected_version: 1 }))
        .version,
    ).toBe(2);
    expect(
      (
        await appendOk(streamId, {
          events: [{ event: contextUpdated("b", 2) }],
          expected_version: "stream_exists",
        })
      ).version,
    ).toBe(3);
    expect(
      (await appendOk(streamId, { events: [{ event: contextUpdated("c", 3) }], expected_version: "any" }))
        .version,
    ).toBe(4);
  });

  it("answers 409 with expected and actual on a stale version, and writes nothing", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }, { event: contextUpdated("a", 1) }] });
    const problem = await expectProblem(
      await appendEvents(streamId, { events: [{ event: contextUpdated("b", 2) }], expected_version: 1 }),
      409,
      /is at version 2 but the append expected version 1/,
    );
    expect(problemCode(problem)).toBe("concurrency_conflict");
    expect(problem.expected).toBe(1);
    expect(problem.actual).toBe(2);

    const noStream = await expectProblem(
      await appendEvents(streamId, {
        events: [{ event: contextUpdated("b", 2) }],
        expected_version: "no_stream",
      }),
      409,
    );
    expect(noStream).toMatchObject({ expected: "no_stream", actual: 2 });

    const ahead = await expectProblem(
      await appendEvents(streamId, { events: [{ event: contextUpdated("b", 2) }], expected_version: 7 }),
      409,
    );
    expect(ahead).toMatchObject({ expected: 7, actual: 2 });
    await expectVersion(streamId, 2);
  });

  it("answers 409 with expected and actual when stream_exists meets a stream with no events, and creates nothing", async () => {
    const streamId = crypto.randomUUID();
    const problem = await expectProblem(
      await appendEvents(streamId, { events: [{ event: started() }], expected_version: "stream_exists" }),
      409,
      /has no events but the append expected an existing stream; create it first/,
    );
    expect(problemCode(problem)).toBe("concurrency_conflict");
    expect(problem).toMatchObject({ title: "Version conflict", expected: "stream_exists", actual: 0 });
    await expectNoStream(streamId);
  });

  it('comes from If-Match: "N" (the ETag of the previous append)', async () => {
    const streamId = crypto.randomUUID();
    const created = await appendEvents(streamId, { events: [{ event: started() }] }, { "if-match": '"0"' });
    const etag = created.headers.get("etag");
    expect(etag).toBe('"1"');
    await expectJson<AppendResult>(created, 201);

    const next = await appendEvents(
      streamId,
      { events: [{ event: contextUpdated("a", 1) }, { event: contextUpdated("b", 2) }] },
      { "if-match": etag ?? "" },
    );
    expect(next.headers.get("etag")).toBe('"3"');
    expect((await expectJson<AppendResult>(next, 201)).versions).toEqual([2, 3]);

    // The same ETag again is stale now.
    const stale = await expectProblem(
      await appendEvents(streamId, { events: [{ event: contextUpdated("c", 3) }] }, { "if-match": '"1"' }),
      409,
    );
    expect(stale).toMatchObject({ expected: 1, actual: 3 });

    // Agreeing If-Match and expected_version are fine.
    const agreeing = await appendEvents(
      streamId,
      { events: [{ event: contextUpdated("c", 3) }], expected_version: 3 },
      { "if-match": ' "3" ' },
    );
    expect((await expectJson<AppendResult>(agreeing, 201)).version).toBe(4);
    await expectVersion(streamId, 4);
  });

  it("takes If-Match: * as 'the stream exists'", async () => {
    const streamId = crypto.randomUUID();
    const refused = await expectProblem(
      await appendEvents(streamId, { events: [{ event: started() }] }, { "if-match": "*" }),
      409,
    );
    expect(problemCode(refused)).toBe("concurrency_conflict");
    expect(refused).toMatchObject({ expected: "stream_exists", actual: 0 });
    await expectNoStream(streamId);

    await appendOk(streamId, { events: [{ event: started() }] });
    const accepted = await appendOk(
      streamId,
      { events: [{ event: contextUpdated("a", 1) }] },
      { "if-match": "*" },
    );
    expect(accepted.version).toBe(2);
  });
});

describe("the workflow rules", () => {
  it("answer 422 with the reason and the event's index, and write nothing of the append", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    const problem = await expectProblem(
      await appendEvents(streamId, {
        events: [
          { event: stepActivated("review") },
          { event: stepCompleted("review") },
          { event: stepCompleted("approve") },
        ],
      }),
      422,
      /step_completed for step "approve" refused: the step is not active \(it was never activated\); workflow is running at version 3/,
    );
    expect(problemCode(problem)).toBe("invalid_event_sequence");
    // The workflow status the event met is in the detail ("workflow is running"); the problem's
    // own `status` member is the HTTP status, as RFC 9457 reserves it.
    expect(problem).toMatchObject({
      event_index: 2,
      event_type: "step_completed",
      step_id: "approve",
      status: 422,
      version: 3,
    });
    await expectVersion(streamId, 1);
    expect(await readAll(streamId)).toHaveLength(1);
  });

  it("refuse a second workflow_started and anything after completion", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    await expectProblem(
      await appendEvents(streamId, { events: [{ event: started() }] }),
      422,
      /workflow_started refused: the stream already has 1 event/,
    );
    await appendOk(streamId, { events: [{ event: workflowCompleted() }] });
    const ended = await expectProblem(
      await appendEvents(streamId, { events: [{ event: stepActivated("late") }] }),
      422,
      /step_activated for step "late" refused/,
    );
    expect(ended.status).toBe(422);
    const head = await expectVersion(streamId, 2);
    expect(head.status).toBe("completed");
  });

  it("refuse a stream whose first event is not workflow_started, creating nothing", async () => {
    const streamId = crypto.randomUUID();
    await expectProblem(
      await appendEvents(streamId, { events: [{ event: contextUpdated("a", 1) }] }),
      422,
      /context_updated for key "a" refused/,
    );
    await expectNoStream(streamId);
  });
});

describe("idempotency", () => {
  it("answers a repeat with the same event ids 200 with the original versions, writing nothing", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    const ids = [crypto.randomUUID(), crypto.randomUUID()] as const;
    const append = {
      events: [
        { event: contextUpdated("a", 1), event_id: ids[0] },
        { event: contextUpdated("b", 2), event_id: ids[1] },
      ],
      expected_version: 1,
    };
    const original = await appendOk(streamId, append);
    expect(original).toMatchObject({ version: 3, versions: [2, 3], event_ids: ids, idempotent: false });

    const repeat = await appendEvents(streamId, append);
    expect(repeat.headers.get("etag")).toBe('"3"');
    expect(await expectJson<AppendResult>(repeat, 200)).toEqual({ ...original, idempotent: true });

    // Still a repeat after the stream moved on (the expected version is not checked again).
    await appendOk(streamId, { events: [{ event: contextUpdated("c", 3) }] });
    const later = await expectJson<AppendResult>(await appendEvents(streamId, append), 200);
    expect(later).toMatchObject({ version: 3, versions: [2, 3], event_ids: ids, idempotent: true });

    await expectVersion(streamId, 4);
    const events = await readAll(streamId);
    expect(events.map((event) => event.event_id).filter((id) => ids.includes(id))).toEqual(ids);
    expect(events).toHaveLength(4);
  });

  it("answers 409 when an event id already stored is reused with a new event", async () => {
    const streamId = crypto.randomUUID();
    const used = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started(), event_id: used }] });
    const problem = await expectProblem(
      await appendEvents(streamId, {
        events: [
          { event: contextUpdated("a", 1), event_id: crypto.randomUUID() },
          { event: contextUpdated("b", 2), event_id: used },
        ],
      }),
      409,
      new RegExp(`Event id ${used} is already stored`),
    );
    expect(problemCode(problem)).toBe("idempotency_conflict");
    expect(problem.event_ids).toEqual([used]);
    await expectVersion(streamId, 1);
  });

  it("answers 409 when an event id of another stream is reused, creating nothing", async () => {
    const used = crypto.randomUUID();
    await appendOk(crypto.randomUUID(), { events: [{ event: started(), event_id: used }] });
    const streamId = crypto.randomUUID();
    const problem = await expectProblem(
      await appendEvents(streamId, { events: [{ event: started(), event_id: used }] }),
      409,
      /already stored but not as this append/,
    );
    expect(problemCode(problem)).toBe("idempotency_conflict");
    await expectNoStream(streamId);
  });
});

describe("timestamps", () => {
  it("are filled by the server when missing", async () => {
    const streamId = crypto.randomUUID();
    const before = Date.now();
    await appendOk(streamId, {
      events: [
        { event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } },
        { event: { type: "step_activated", step_id: "s", assigned_to: [] } },
      ],
    });
    const after = Date.now();
    const events = await readAll(streamId);
    const [first, second] = events.map((stored) => stored.event);
    const filled = [
      first?.type === "workflow_started" ? first.started_at : undefined,
      second?.type === "step_activated" ? second.activated_at : undefined,
    ];
    for (const value of filled) {
      expect(value).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      const millis = Date.parse(value ?? "");
      expect(millis).toBeGreaterThanOrEqual(before - 1000);
      expect(millis).toBeLessThanOrEqual(after + 1000);
    }
    const state = await getJson<StateResult>(`/streams/${streamId}/state`);
    expect(state.state.started_at).toBe(filled[0]);
  });

  it("are kept exactly when given, normalised to UTC with Z, nanoseconds included", async () => {
    const streamId = crypto.randomUUID();
    const workflowId = crypto.randomUUID();
    await appendOk(streamId, {
      events: [
        {
          event: {
            type: "workflow_started",
            workflow_id: workflowId,
            config_version: "v1",
            started_at: "2026-03-01T12:00:00.123456789+02:00",
          },
        },
        {
          event: { type: "context_updated", key: "a", value: 1, updated_at: "2026-03-01t23:30:05.5-01:30" },
        },
        { event: { type: "context_updated", key: "b", value: 2, updated_at: "2026-03-01T10:00:00Z" } },
        { event: { type: "context_updated", key: "c", value: 3, updated_at: "0050-01-01T00:00:00.000001Z" } },
      ],
    });
    const events = await readAll(streamId);
    expect(events.map((event) => event.event)).toEqual([
      {
        type: "workflow_started",
        workflow_id: workflowId,
        config_version: "v1",
        started_at: "2026-03-01T10:00:00.123456789Z",
      },
      { type: "context_updated", key: "a", value: 1, updated_at: "2026-03-02T01:00:05.5Z" },
      { type: "context_updated", key: "b", value: 2, updated_at: "2026-03-01T10:00:00Z" },
      { type: "context_updated", key: "c", value: 3, updated_at: "0050-01-01T00:00:00.000001Z" },
    ]);
    const state = await getJson<StateResult>(`/streams/${streamId}/state`);
    expect(state.state.started_at).toBe("2026-03-01T10:00:00.123456789Z");
  });
});

describe("Server-Timing", () => {
  it("is sent on every append, idempotent repeats included", async () => {
    const streamId = crypto.randomUUID();
    const eventId = crypto.randomUUID();
    const append = { events: [{ event: started(), event_id: eventId }] };
    for (const expected of [201, 200]) {
      const response = await appendEvents(streamId, append);
      expect(response.status).toBe(expected);
      expect(Object.keys(serverTiming(response.headers.get("server-timing")))).toEqual(
        expect.arrayContaining(["queue", "db", "total"]),
      );
      await response.body?.cancel();
    }
    const head = await api(`/streams/${streamId}`);
    expect(head.headers.get("etag")).toBe('"1"');
    await head.body?.cancel();
  });
});
