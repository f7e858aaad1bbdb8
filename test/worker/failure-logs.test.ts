import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, afterEach, expect, it, vi } from "vitest";
import type { StreamActor } from "../../src/actor/stream-actor";
import { createPool } from "../../src/db/create-pool";
import { readDatabaseSettings } from "../../src/db/database-settings";
import { applyEvents } from "../../src/state/apply-event";
import { emptyWorkflowState } from "../../src/state/workflow-state";
import { contextUpdated, started } from "../support/event-builders";
import { api, appendOk, expectProblem, getJson, problemCode, type StateResult } from "../support/http-client";

// What an operator finds in the logs when the actor meets data it cannot serve: one
// JSON line per failure that is the service's fault, and one per snapshot it skips.

const bindings = env as unknown as Env;
const pool = createPool(readDatabaseSettings(env), { max: 1 });
afterAll(() => pool.end());
afterEach(() => {
  vi.restoreAllMocks();
});

/** The JSON lines written through `spy` whose event is `event`. */
function linesOf(spy: { mock: { calls: unknown[][] } }, event: string): Array<Record<string, unknown>> {
  return spy.mock.calls
    .map(([line]) => {
      try {
        return JSON.parse(String(line)) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((line) => line.event === event);
}

it("logs a row it cannot read, with the stream, the read and the cause, as it answers 500 corrupt_data", async () => {
  const streamId = crypto.randomUUID();
  await appendOk(streamId, { events: [{ event: started() }, { event: contextUpdated("k", 1) }] });
  await pool.query(
    `UPDATE workflow_events SET event = '{"type": "no_such_event"}'::jsonb WHERE stream_id = $1 AND version = 2`,
    [streamId],
  );
  const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);

  const problem = await expectProblem(await api(`/streams/${streamId}/events`), 500);
  expect(problemCode(problem)).toBe("corrupt_data");
  expect(linesOf(errors, "request_failed")).toEqual([
    {
      time: expect.any(String),
      event: "request_failed",
      level: "error",
      stream_id: streamId,
      operation: "read_events",
      code: "corrupt_data",
      error: "CorruptRow",
      cause: expect.stringMatching(/^Event at position \d+ of stream .* does not match the event schema/),
    },
  ]);
});

it("logs each snapshot a cold load skips, and still serves the right state", async () => {
  const streamId = crypto.randomUUID();
  const events = [started(), ...Array.from({ length: 50 }, (_, i) => contextUpdated(`k${i}`, i))];
  await appendOk(streamId, { events: events.map((event) => ({ event })) });
  expect(
    (
      await pool.query(
        "UPDATE workflow_snapshots SET schema_version = 0 WHERE stream_id = $1 AND version = 51",
        [streamId],
      )
    ).rowCount,
  ).toBe(1);
  // Throw the actor away, as an eviction does, so the next read loads the stream cold.
  const stub = bindings.STREAM_ACTOR.get(bindings.STREAM_ACTOR.idFromName(streamId));
  await runInDurableObject(stub, (_instance: StreamActor, state: DurableObjectState) => {
    state.abort("evicted by the test");
  }).catch(() => undefined);
  const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);

  const state = await getJson<StateResult>(`/streams/${streamId}/state`);
  expect(state.state).toEqual(applyEvents(emptyWorkflowState(), events));
  expect(linesOf(warnings, "snapshot_skipped")).toEqual([
    {
      time: expect.any(String),
      event: "snapshot_skipped",
      level: "warn",
      stream_id: streamId,
      code: "corrupt_data",
      version: 51,
      cause: expect.stringMatching(/schema version 0/),
    },
  ]);
});
