import { describe, expect, it } from "vitest";
import { contextUpdated, started } from "../support/event-builders";
import {
  type AppendResult,
  appendEvents,
  appendOk,
  expectJson,
  expectProblem,
  expectVersion,
  type Problem,
} from "../support/http-client";

// Writers racing on exact expected versions take turns (src/actor/turns.ts, ARCHITECTURE
// decision 23): a 409 hands out a turn, and while a writer refused earlier is retrying
// with its turn, a later writer whose version is right is held, then told the version
// it must retry at; through real HTTP requests into the Worker and its actor.

const update = (key: string) => ({ events: [{ event: contextUpdated(key, 1) }] });

async function conflict(response: Response): Promise<Problem & { actual: number; turn: string }> {
  const problem = await expectProblem(response, 409);
  expect(problem).toMatchObject({ type: "urn:glyph-streams:problem:concurrency_conflict" });
  expect(typeof problem.turn).toBe("string");
  return problem as Problem & { actual: number; turn: string };
}

/** Settles with "pending" if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([
    promise,
    new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), ms)),
  ]);
}

/** A stream at version 1 where writer A was refused twice, the second time sending its turn back. */
async function streamWithClaimedTurn(streamId: string): Promise<{ turn: string }> {
  await appendOk(streamId, { events: [{ event: started() }] });
  const first = await conflict(await appendEvents(streamId, { ...update("a0"), expected_version: 0 }));
  const again = await conflict(
    await appendEvents(streamId, { ...update("a1"), expected_version: 0, turn: first.turn }),
  );
  expect(again.turn).toBe(first.turn);
  return first;
}

describe("turns on exact expected versions", () => {
  it("serve the writer refused first before a later writer, however their retries arrive", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });

    // A is refused (stale) and claims its turn by sending it back, stale once more.
    const first = await conflict(await appendEvents(streamId, { ...update("a0"), expected_version: 0 }));
    expect(first.actual).toBe(1);
    const again = await conflict(
      await appendEvents(streamId, { ...update("a1"), expected_version: 0, turn: first.turn }),
    );
    expect(again.turn).toBe(first.turn);

    // B expects the stream's version, but A is first in line: B is held, not written.
    const b = appendEvents(streamId, { ...update("b"), expected_version: 1 });
    expect(await within(b, 300)).toBe("pending");
    await expectVersion(streamId, 1);

    // A's retry at the version it was told wins; then B hears the version it must retry at.
    const won = await expectJson<AppendResult>(
      await appendEvents(streamId, { ...update("a2"), expected_version: 1, turn: first.turn }),
      201,
    );
    expect(won.version).toBe(2);
    const held = await conflict(await b);
    expect(held.actual).toBe(2);
    expect(held.turn).not.toBe(first.turn);

    const retried = await expectJson<AppendResult>(
      await appendEvents(streamId, { ...update("b"), expected_version: 2, turn: held.turn }),
      201,
    );
    expect(retried.version).toBe(3);
  });

  it("let a writer that does not know turns, once held and answered, hold no one after it", async () => {
    const streamId = crypto.randomUUID();
    const first = await streamWithClaimedTurn(streamId);
    // U knows nothing of turns: stale, it is held behind A, then answered once A has won.
    const unaware = appendEvents(streamId, { ...update("u"), expected_version: 0 });
    expect(await within(unaware, 200)).toBe("pending");
    await expectJson<AppendResult>(
      await appendEvents(streamId, { ...update("a2"), expected_version: 1, turn: first.turn }),
      201,
    );
    expect((await conflict(await unaware)).actual).toBe(2);
    // U never sends its turn back: C, at the right version, is let through after the short
    // grace (TURN_GRACE_MS), not held as long as a turn its writer keeps sending.
    const c = appendEvents(streamId, { ...update("c"), expected_version: 2 });
    const answered = await within(c, 400);
    expect(answered).not.toBe("pending");
    if (answered !== "pending") expect((await expectJson<AppendResult>(answered, 201)).version).toBe(3);
  });

  it("hold no one for a turn that was never sent back", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    await conflict(await appendEvents(streamId, { ...update("a"), expected_version: 0 }));
    const b = await appendEvents(streamId, { ...update("b"), expected_version: 1 });
    expect((await expectJson<AppendResult>(b, 201)).version).toBe(2);
  });

  it("let a held writer through once the writer before it has gone quiet", async () => {
    const streamId = crypto.randomUUID();
    await streamWithClaimedTurn(streamId);
    // A never comes back: after TURN_HOLD_MS its turn lapses and B, held meanwhile, is written.
    const b = appendEvents(streamId, { ...update("b"), expected_version: 1 });
    expect(await within(b, 300)).toBe("pending");
    expect((await expectJson<AppendResult>(await b, 201)).version).toBe(2);
  });

  it("refuse a turn that is not one, saying how to send it", async () => {
    const streamId = crypto.randomUUID();
    await appendOk(streamId, { events: [{ event: started() }] });
    const problem = await expectProblem(
      await appendEvents(streamId, { ...update("a"), expected_version: 1, turn: "first please" }),
      400,
    );
    expect(JSON.stringify(problem)).toContain("send back the turn a 409 gave");
    await expectVersion(streamId, 1);
  });
});
