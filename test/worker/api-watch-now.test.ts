import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { FeedEvent } from "../../src/feed/feed-event";
import { FeedWatchServerMessage } from "../../src/feed/feed-messages";
import { contextUpdated, started } from "../support/event-builders";
import { api, appendOk, BASE_URL, expectProblem, getJson, problemCode } from "../support/http-client";
import { adminAuthorization, TEST_TOKENS } from "../support/test-tokens";

// GET /watch?after=now: the feed from its head when the socket opens. The first message
// says which checkpoint that is; events committed before the socket opened never come,
// every one committed after does, and the checkpoint resumes exactly (another socket, and
// GET /events, continue from it with the same events).

const freshType = () => `now_${crypto.randomUUID().slice(0, 8)}`;

interface Watcher {
  messages: FeedWatchServerMessage[];
  events: () => FeedEvent[];
  until(done: (messages: readonly FeedWatchServerMessage[]) => boolean, what: string): Promise<void>;
  close(): void;
}

async function watch(query: string, authorization = adminAuthorization): Promise<Watcher> {
  const response = await SELF.fetch(`${BASE_URL}/watch?${query}`, {
    headers: { upgrade: "websocket", ...authorization },
  });
  if (response.status !== 101) throw new Error(`watch refused: ${response.status} ${await response.text()}`);
  const socket = response.webSocket;
  if (socket === null) throw new Error("no WebSocket in the upgrade");
  socket.accept();
  const messages: FeedWatchServerMessage[] = [];
  socket.addEventListener("message", (message) => {
    messages.push(FeedWatchServerMessage.parse(JSON.parse(String(message.data))));
  });
  return {
    messages,
    events: () => messages.flatMap((message) => (message.type === "event" ? [message.event] : [])),
    async until(done, what) {
      for (let waited = 0; !done(messages); waited += 25) {
        if (waited > 15_000) throw new Error(`no ${what} within 15 s: ${JSON.stringify(messages)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    close: () => socket.close(1000, "done"),
  };
}

interface FeedPage {
  events: FeedEvent[];
  next: string;
}

/** Waits until GET /events shows these events: they are below the feed's horizon, so "now" is past them. */
async function inFeed(streamType: string, eventIds: readonly string[]): Promise<FeedEvent[]> {
  for (let waited = 0; ; waited += 25) {
    const page = await getJson<FeedPage>(`/events?stream_type=${streamType}&limit=1000`);
    const seen = page.events.map((event) => event.event_id);
    if (eventIds.every((id) => seen.includes(id))) return page.events;
    if (waited > 15_000) throw new Error(`events not in the feed within 15 s: ${eventIds.join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const startedMessage = (messages: readonly FeedWatchServerMessage[]) => {
  const first = messages[0];
  if (first?.type !== "started")
    throw new Error(`the first message is not started: ${JSON.stringify(first)}`);
  return first.checkpoint;
};

describe("GET /watch?after=now", () => {
  it("sends only what commits after the socket opened, first saying where that starts, and resumes from there exactly", async () => {
    const streamType = freshType();
    const first = crypto.randomUUID();
    const before = await appendOk(first, {
      stream_type: streamType,
      events: [{ event: started() }, { event: contextUpdated("before", 1) }],
    });
    await inFeed(streamType, before.event_ids);

    const watcher = await watch(`after=now&stream_type=${streamType}`);
    try {
      await watcher.until((messages) => messages.some((m) => m.type === "caught_up"), "caught_up");
      const checkpoint = startedMessage(watcher.messages);
      expect(checkpoint).toMatch(/^[A-Za-z0-9_-]+$/);
      // Nothing of the history: the place it starts from is after all of it.
      expect(watcher.events()).toEqual([]);
      expect(await getJson<FeedPage>(`/events?stream_type=${streamType}&after=${checkpoint}`)).toEqual({
        events: [],
        next: checkpoint,
      });

      const second = crypto.randomUUID();
      const after = [
        ...(await appendOk(first, { events: [{ event: contextUpdated("after", 2) }] })).event_ids,
        ...(
          await appendOk(second, {
            stream_type: streamType,
            events: [{ event: started() }, { event: contextUpdated("after", 3) }],
          })
        ).event_ids,
      ];
      await watcher.until(() => watcher.events().length >= after.length, "events after the open");
      expect(watcher.events().map((event) => event.event_id)).toEqual(after);
      expect(watcher.messages.map((message) => message.type)).toEqual([
        "started",
        "caught_up",
        "event",
        "event",
        "event",
      ]);

      // Resuming from the started checkpoint: the same events, exactly, over another socket and over GET /events.
      const resumed = await watch(`after=${checkpoint}&stream_type=${streamType}`);
      try {
        await resumed.until(() => resumed.events().length >= after.length, "the resumed events");
        await resumed.until((messages) => messages.some((m) => m.type === "caught_up"), "caught_up");
        expect(resumed.events()).toEqual(watcher.events());
        // A socket that did not ask for "now" gets no started message.
        expect(resumed.messages.some((message) => message.type === "started")).toBe(false);
      } finally {
        resumed.close();
      }
      const page = await getJson<FeedPage>(`/events?stream_type=${streamType}&after=${checkpoint}`);
      expect(page.events).toEqual(watcher.events());
    } finally {
      watcher.close();
    }
  });

  it("starts at the head for everyone's feed too, and keeps a token limited to stream types to its types", async () => {
    // Unfiltered: other tests append at the same time, so only this test's own events are counted.
    const streamType = freshType();
    const before = await appendOk(crypto.randomUUID(), {
      stream_type: streamType,
      events: [{ event: started() }],
    });
    await inFeed(streamType, before.event_ids);
    const everyone = await watch("after=now");
    const invoices = await watch("after=now", { authorization: `Bearer ${TEST_TOKENS.invoices}` });
    try {
      await everyone.until((messages) => messages.length > 0, "a first message");
      await invoices.until((messages) => messages.length > 0, "a first message");
      startedMessage(everyone.messages);
      startedMessage(invoices.messages);
      const workflow = await appendOk(crypto.randomUUID(), {
        stream_type: streamType,
        events: [{ event: started() }],
      });
      const invoice = await appendOk(crypto.randomUUID(), {
        stream_type: "invoice",
        events: [{ event: started() }],
      });
      const ids = (watcher: Watcher) => watcher.events().map((event) => event.event_id);
      await everyone.until(() => ids(everyone).includes(invoice.event_ids[0] as string), "the invoice");
      await invoices.until(() => ids(invoices).includes(invoice.event_ids[0] as string), "the invoice");
      expect(ids(everyone)).toContain(workflow.event_ids[0]);
      expect(ids(everyone)).not.toContain(before.event_ids[0]);
      expect(invoices.events().every((event) => event.stream_type === "invoice")).toBe(true);
    } finally {
      everyone.close();
      invoices.close();
    }
  });

  it("answers a bad after with a problem that names it, before any upgrade", async () => {
    for (const after of ["Now", "now,", "", "later", "bm93"]) {
      const response = await api(`/watch?after=${encodeURIComponent(after)}`, {
        headers: { upgrade: "websocket" },
      });
      const problem = await expectProblem(response, 400, /after: is neither "now" nor a checkpoint/);
      expect(problemCode(problem), after).toBe("invalid_request");
    }
    await expectProblem(
      await api("/watch?after=now&stream_type=workflow", {
        headers: { upgrade: "websocket", authorization: `Bearer ${TEST_TOKENS.invoices}` },
      }),
      403,
    );
  });
});
