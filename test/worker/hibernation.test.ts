import { SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { contextUpdated, started } from "../support/event-builders";
import { appendEvents, BASE_URL } from "../support/http-client";
import { adminAuthorization } from "../support/test-tokens";

// An actor with a watcher attached is not kept in memory by anything of its own
// between appends: it reaches the database over HTTP and holds no socket to it, and
// the watcher's socket is a hibernatable one. So the runtime evicts the idle actor
// (workerd does after some seconds of inactivity) while the watcher stays connected,
// and the next append wakes a new instance that still reaches the watcher.

const bindings = env as unknown as Env;
const actorFor = (streamId: string) => bindings.STREAM_ACTOR.get(bindings.STREAM_ACTOR.idFromName(streamId));
/** Longer than workerd takes to evict an idle actor (about 10 to 20 s here). */
const IDLE_MS = 30_000;

it(
  "hibernates between appends with a watcher attached, and the watcher still gets the next commit",
  async () => {
    const streamId = crypto.randomUUID();
    const upgrade = await SELF.fetch(`${BASE_URL}/streams/${streamId}/watch?from=0`, {
      headers: { upgrade: "websocket", ...adminAuthorization },
    });
    expect(upgrade.status).toBe(101);
    const socket = upgrade.webSocket;
    if (socket === null) throw new Error("no WebSocket in the upgrade");
    socket.accept();
    const versions: number[] = [];
    socket.addEventListener("message", (message) => {
      const parsed = JSON.parse(String(message.data)) as { type: string; event?: { version: number } };
      if (parsed.type === "event" && parsed.event) versions.push(parsed.event.version);
    });

    const first = await appendEvents(streamId, { events: [{ event: started() }] });
    expect(first.status).toBe(201);
    await first.body?.cancel();
    expect((await actorFor(streamId).stats()).requests).toBe(1);

    // Nothing touches the actor now: no request, no statement, no socket of its own.
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    // A fresh instance answers: its counters started again, so the idle one was evicted.
    expect(await actorFor(streamId).stats()).toEqual({
      requests: 0,
      transactions: 0,
      loads: 0,
      statements: 0,
    });

    const second = await appendEvents(streamId, { events: [{ event: contextUpdated("after", 1) }] });
    expect(second.status).toBe(201);
    await second.body?.cancel();
    for (let waited = 0; !versions.includes(2) && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(versions).toEqual([1, 2]);
    socket.close(1000, "done");
  },
  IDLE_MS + 30_000,
);
