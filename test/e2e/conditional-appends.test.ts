import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { adminAuthorization } from "../support/test-tokens";
import { type RunningWorker, startWorker } from "./worker-harness";

// Conditional appends under contention, over real HTTP to the real Worker: 64 writers
// race to move one workflow through its steps, each append saying "complete step X
// and activate the next, only if the workflow is still at X". Exactly one writer wins
// each step; every other learns from its 412 where the workflow is now and races for
// that step instead. No exact versions, no reads, no version conflicts, and no retry
// storm: a writer never sends twice for the same step, so at most 64 requests per step.

const WRITERS = 64;
const STEPS = 20;

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker(inject("databaseWsProxy"));
});
afterAll(() => worker.stop());

const step = (index: number) => `s${index}`;

async function append(streamId: string, body: unknown): Promise<Response> {
  return fetch(new URL(`/streams/${streamId}/events`, worker.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...adminAuthorization },
    body: JSON.stringify(body),
  });
}

interface WriterLog {
  /** The step each request raced for, in order. */
  tried: number[];
  won: number[];
}

it(`lets exactly one of ${WRITERS} writers complete each of ${STEPS} steps, with one request per writer and step at most`, async () => {
  const streamId = crypto.randomUUID();
  const setup = await append(streamId, {
    events: [
      { event: { type: "workflow_started", workflow_id: crypto.randomUUID(), config_version: "v1" } },
      { event: { type: "step_activated", step_id: step(0), assigned_to: [] } },
    ],
  });
  expect(setup.status).toBe(201);

  const race = async (writer: number): Promise<WriterLog> => {
    const log: WriterLog = { tried: [], won: [] };
    let at = 0;
    while (at < STEPS) {
      log.tried.push(at);
      const response = await append(streamId, {
        events: [
          { event: { type: "step_completed", step_id: step(at), result: { writer } } },
          { event: { type: "step_activated", step_id: step(at + 1), assigned_to: [] } },
        ],
        if: { current_step: step(at) },
      });
      const body = (await response.json()) as { state?: { current_step?: string } };
      if (response.status === 201) {
        log.won.push(at);
        at += 1;
      } else if (response.status === 412) {
        // The refusal names the step the workflow is at: race for that one next.
        at = Number(body.state?.current_step?.slice(1));
      } else {
        throw new Error(`writer ${writer}: ${response.status} ${JSON.stringify(body)}`);
      }
    }
    return log;
  };
  const logs = await Promise.all(Array.from({ length: WRITERS }, (_, writer) => race(writer)));

  // One winner per step.
  const winners = logs.flatMap((log) => log.won).sort((a, b) => a - b);
  expect(winners).toEqual(Array.from({ length: STEPS }, (_, index) => index));
  // Only 201 and 412 (race throws on anything else); a writer raced for a step at most
  // once, always for a later step than before.
  for (const log of logs) expect(log.tried).toEqual([...new Set(log.tried)].sort((a, b) => a - b));
  const requests = logs.reduce((sum, log) => sum + log.tried.length, 0);
  expect(requests).toBeLessThanOrEqual(WRITERS * STEPS);

  // The log holds each step's completion once, in order, by the writer that was told it won.
  const page = await fetch(new URL(`/streams/${streamId}/events?limit=1000`, worker.url), {
    headers: adminAuthorization,
  });
  const { events } = (await page.json()) as {
    events: Array<{
      version: number;
      event: { type: string; step_id?: string; result?: { writer: number } };
    }>;
  };
  expect(events).toHaveLength(2 + 2 * STEPS);
  const completions = events.filter((stored) => stored.event.type === "step_completed");
  expect(completions.map((stored) => stored.event.step_id)).toEqual(
    Array.from({ length: STEPS }, (_, index) => step(index)),
  );
  for (const [index, stored] of completions.entries()) {
    expect(logs[stored.event.result?.writer ?? -1]?.won).toContain(index);
  }
});
