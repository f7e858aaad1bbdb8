import { describe, expect, it } from "vitest";
import type { StoredEvent } from "../../src/events/types";
import { contextUpdated, started, workflowCompleted } from "../support/event-builders";
import { api, appendOk, expectProblem, getJson, problemCode } from "../support/http-client";
import { TEST_TOKENS } from "../support/test-tokens";

// GET /events through real HTTP requests into the Worker: the global feed's pages, its
// filters, its checkpoints, what a token limited to types reads, and bad input.

interface FeedPage {
  events: Array<StoredEvent & { checkpoint: string }>;
  next: string;
}

const freshType = () => `feed_${crypto.randomUUID().slice(0, 8)}`;
const readerToken = (token: string) => ({ authorization: `Bearer ${token}` });

/** Two streams of a new type: the first with 3 events, the second with 2 (one a completion). */
async function twoStreams(streamType: string) {
  const first = crypto.randomUUID();
  const second = crypto.randomUUID();
  const a = await appendOk(first, {
    stream_type: streamType,
    events: [{ event: started() }, { event: contextUpdated("a", 1) }, { event: contextUpdated("b", 2) }],
  });
  const b = await appendOk(second, {
    stream_type: streamType,
    events: [{ event: started() }, { event: workflowCompleted() }],
  });
  return { first, second, ids: [...a.event_ids, ...b.event_ids] };
}

describe("GET /events", () => {
  it("pages every stream's events in commit order, each the per-stream StoredEvent plus its checkpoint", async () => {
    const streamType = freshType();
    const { first, ids } = await twoStreams(streamType);

    const page1 = await getJson<FeedPage>(`/events?stream_type=${streamType}&limit=2`);
    expect(page1.events.map((event) => event.event_id)).toEqual(ids.slice(0, 2));
    expect(page1.next).toBe(page1.events[1]?.checkpoint);
    const page2 = await getJson<FeedPage>(`/events?stream_type=${streamType}&limit=2&after=${page1.next}`);
    const page3 = await getJson<FeedPage>(`/events?stream_type=${streamType}&limit=2&after=${page2.next}`);
    expect([...page2.events, ...page3.events].map((event) => event.event_id)).toEqual(ids.slice(2));
    const empty = await getJson<FeedPage>(`/events?stream_type=${streamType}&after=${page3.next}`);
    expect(empty).toEqual({ events: [], next: page3.next });

    // The same object the per-stream read returns, plus the checkpoint.
    const perStream = await getJson<{ events: StoredEvent[] }>(`/streams/${first}/events`);
    const { checkpoint, ...stored } = page1.events[0] as FeedPage["events"][number];
    expect(stored).toEqual(perStream.events[0]);
    expect(checkpoint).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("filters by event type, and by several stream types at once", async () => {
    const [one, two] = [freshType(), freshType()];
    await twoStreams(one);
    await twoStreams(two);
    const completions = await getJson<FeedPage>(
      `/events?stream_type=${one},${two}&event_type=workflow_completed`,
    );
    expect(completions.events.map((event) => [event.stream_type, event.event.type])).toEqual([
      [one, "workflow_completed"],
      [two, "workflow_completed"],
    ]);
  });

  it("gives a token limited to stream types only those types, and refuses to ask for others", async () => {
    const invoices = await getJson<FeedPage>("/events?limit=50", 200, readerToken(TEST_TOKENS.invoices));
    for (const event of invoices.events) expect(event.stream_type).toBe("invoice");
    const refused = await expectProblem(
      await api("/events?stream_type=invoice,workflow", { headers: readerToken(TEST_TOKENS.invoices) }),
      403,
      /only read streams of type invoice, not workflow/,
    );
    expect(problemCode(refused)).toBe("forbidden");
    await expectProblem(
      await api("/events", { headers: readerToken(TEST_TOKENS.oneStream) }),
      403,
      /limited to particular streams/,
    );
  });

  it("answers bad input with a problem that names the parameter", async () => {
    const cases: Array<[string, RegExp]> = [
      ["after=not-a-checkpoint", /after.*not a checkpoint/],
      [`after=${btoa("1.2")}=`, /after/],
      [`after=${btoa("01.2").replace(/=+$/, "")}`, /after/],
      ["limit=0", /limit/],
      ["limit=1001", /limit/],
      ["event_type=step_exploded", /event_type.*step_exploded/],
      ["stream_type=no%20spaces", /stream_type/],
      ["stream_type=a,,b", /stream_type item 2/],
    ];
    for (const [query, detail] of cases) {
      const problem = await expectProblem(await api(`/events?${query}`), 400, detail);
      expect(problemCode(problem), query).toBe("invalid_request");
    }
  });
});
