import { runInDurableObject, SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type AppendAnswer, type AppendOutcome, unpackAppendAnswer } from "../../src/actor/actor-protocol";
import type { StreamActor } from "../../src/actor/stream-actor";
import type { WorkflowEvent } from "../../src/events/types";
import type { StateCondition } from "../../src/state/state-condition";
import { contextUpdated, started, stepActivated, stepCompleted } from "../support/event-builders";
import {
  type AppendItem,
  appendEvents,
  appendOk,
  BASE_URL,
  type EventsPageResult,
  expectProblem,
  expectVersion,
  getJson,
  problemCode,
  type StateResult,
} from "../support/http-client";
import { webhookHeaders } from "../support/webhook-signing";

// Conditional appends (`if` on the workflow state) through the Worker and the stream actor.

const bindings = env as unknown as Env;
const actorFor = (streamId: string) => bindings.STREAM_ACTOR.get(bindings.STREAM_ACTOR.idFromName(streamId));

const items = (...events: WorkflowEvent[]): AppendItem[] => events.map((event) => ({ event }));
const advance = (from: string, to: string) => items(stepCompleted(from), stepActivated(to));

/** A new stream, running, at step "review" (active), version 3. */
async function atReview(): Promise<string> {
  const streamId = crypto.randomUUID();
  await appendOk(streamId, {
    events: items(started(), contextUpdated("approved", false), stepActivated("review")),
  });
  return streamId;
}

async function storedTypes(streamId: string): Promise<string[]> {
  const page = await getJson<EventsPageResult>(`/streams/${streamId}/events?limit=1000`);
  return page.events.map((stored) => (stored.event as { type: string }).type);
}

describe("an append with a condition that holds", () => {
  it("is written (201) like any append", async () => {
    const streamId = await atReview();
    const appended = await appendOk(streamId, {
      events: advance("review", "approve"),
      if: { status: "running", current_step: "review", steps: { review: "active", approve: null } },
    });
    expect(appended.versions).toEqual([4, 5]);
    const { state } = await getJson<StateResult>(`/streams/${streamId}/state`);
    expect(state.current_step).toBe("approve");
  });
});

describe("an append whose condition does not hold", () => {
  it("answers 412 condition_failed with the state's values of the fields named, and writes nothing", async () => {
    const streamId = await atReview();
    const problem = await expectProblem(
      await appendEvents(streamId, {
        events: advance("intake", "review"),
        if: { current_step: "intake", status: "running", context: { approved: true, missing: 1 } },
      }),
      412,
      /at version 3 does not meet the append's condition: current_step is "review", not "intake"; context\["approved"\] is false, not true; context\["missing"\] is not set, not 1\. Nothing was written/,
    );
    expect(problemCode(problem)).toBe("condition_failed");
    expect(problem).toMatchObject({
      title: "Condition not met",
      status: 412,
      instance: `/streams/${streamId}/events`,
      condition: { current_step: "intake", status: "running", context: { approved: true, missing: 1 } },
      // Only the fields the condition named; a context key the state lacks is left out.
      state: { current_step: "review", status: "running", context: { approved: false } },
      unmet: ["/current_step", "/context/approved", "/context/missing"],
      version: 3,
    });
    expect(Object.keys(problem.state as object).sort()).toEqual(["context", "current_step", "status"]);
    await expectVersion(streamId, 3);
    expect(await storedTypes(streamId)).toEqual(["workflow_started", "context_updated", "step_activated"]);
  });

  it("is checked on a stream with no events against the empty state, creating nothing when it fails", async () => {
    const streamId = crypto.randomUUID();
    const problem = await expectProblem(
      await appendEvents(streamId, { events: items(started()), if: { status: "running" } }),
      412,
    );
    expect(problem).toMatchObject({ state: { status: "pending" }, version: 0 });
    await expectProblem(await appendEvents(streamId, { events: items(contextUpdated("a", 1)) }), 422);
    expect(
      (await appendOk(streamId, { events: items(started()), if: { status: "pending", current_step: null } }))
        .version,
    ).toBe(1);
  });
});

describe("a condition with an expected version", () => {
  it("needs both to hold; a stale version answers 409 before the condition is looked at", async () => {
    const streamId = await atReview();
    const holds = { current_step: "review" };
    const fails = { current_step: "approve" };
    const stale = await expectProblem(
      await appendEvents(streamId, { events: items(contextUpdated("a", 1)), expected_version: 2, if: fails }),
      409,
    );
    expect(stale).toMatchObject({ expected: 2, actual: 3 });
    const unmet = await expectProblem(
      await appendEvents(streamId, { events: items(contextUpdated("a", 1)), expected_version: 3, if: fails }),
      412,
    );
    expect(unmet).toMatchObject({ state: { current_step: "review" }, version: 3 });
    await expectProblem(
      await appendEvents(
        streamId,
        { events: items(contextUpdated("a", 1)), if: fails },
        { "if-match": '"3"' },
      ),
      412,
    );
    await expectVersion(streamId, 3);
    const both = await appendOk(
      streamId,
      { events: items(contextUpdated("a", 1)), if: holds },
      { "if-match": '"3"' },
    );
    expect(both.version).toBe(4);
  });
});

describe("a malformed condition", () => {
  it.each([
    [{}, /name at least one of status, current_step, steps, context/],
    [{ step: "review", status: "active" }, /a condition names only status, current_step, steps, context/],
    [{ status: "done" }, /if\.status/],
    [{ steps: { review: "finished" } }, /if\.steps\.review/],
    [[], /if/],
  ])("answers 400 naming the field: %j", async (condition, detail) => {
    const streamId = await atReview();
    const body = JSON.stringify({ events: items(contextUpdated("a", 1)), if: condition });
    const problem = await expectProblem(await appendEvents(streamId, body), 400, detail);
    expect(problemCode(problem)).toBe("invalid_request");
    await expectVersion(streamId, 3);
  });
});

describe("conditions in one batch", () => {
  it("are checked against the state the appends decided before them left: a later one fails or holds accordingly", async () => {
    const streamId = await atReview();
    const command = (events: WorkflowEvent[], condition: StateCondition) => ({
      streamId,
      expectedVersion: "any" as const,
      events: events.map((event) => ({ event })),
      condition: JSON.stringify(condition),
    });
    const outcomes = await runInDurableObject(actorFor(streamId), async (actor: StreamActor) => {
      const before = await actor.stats();
      // The first append starts a batch of its own; the three after it wait together and form the next.
      const sent: Array<Promise<AppendAnswer>> = [
        actor.append(command([contextUpdated("first", 1)], { status: "running" })),
        actor.append(
          command([stepCompleted("review"), stepActivated("approve")], { current_step: "review" }),
        ),
        actor.append(command([contextUpdated("after", 1)], { current_step: "approve" })),
        actor.append(
          command([stepCompleted("review"), stepActivated("approve")], { current_step: "review" }),
        ),
      ];
      const answered: AppendOutcome[] = (await Promise.all(sent)).map(unpackAppendAnswer);
      const after = await actor.stats();
      return {
        answered,
        requests: after.requests - before.requests,
        batches: after.transactions - before.transactions,
      };
    });
    expect(outcomes.requests).toBe(4);
    expect(outcomes.batches).toBe(2);
    const [first, advanced, noted, late] = outcomes.answered;
    expect(first).toMatchObject({ ok: true, result: { versions: [4] } });
    expect(advanced).toMatchObject({ ok: true, result: { versions: [5, 6] } });
    expect(noted).toMatchObject({ ok: true, result: { versions: [7] } });
    expect(late).toMatchObject({
      ok: false,
      code: "condition_failed",
      details: { state: { current_step: "approve" }, unmet: ["/current_step"], version: 7 },
    });
    expect(await storedTypes(streamId)).toEqual([
      "workflow_started",
      "context_updated",
      "step_activated",
      "context_updated",
      "step_completed",
      "step_activated",
      "context_updated",
    ]);
  });

  it("let exactly one of 64 concurrent writers complete a step, and answer the others 412 with the step moved on", async () => {
    const streamId = await atReview();
    const responses = await Promise.all(
      Array.from({ length: 64 }, () =>
        appendEvents(streamId, { events: advance("review", "approve"), if: { current_step: "review" } }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 412)).toHaveLength(63);
    for (const response of responses.filter((r) => r.status === 412)) {
      expect(await response.json()).toMatchObject({ state: { current_step: "approve" }, version: 5 });
    }
    await expectVersion(streamId, 5);
  });
});

describe("a webhook delivery with a condition", () => {
  /** The first secret vitest.config.ts gives the "acme" source. */
  const variables: Record<string, unknown> = { ...env };
  const acme = (JSON.parse(String(variables.WEBHOOK_SECRETS ?? "{}")) as Record<string, string[]>).acme?.[0];

  async function deliver(body: Record<string, unknown>, webhookId = `msg_${crypto.randomUUID()}`) {
    const text = JSON.stringify(body);
    const headers = await webhookHeaders(acme ?? "", webhookId, text, Math.floor(Date.now() / 1000));
    return SELF.fetch(`${BASE_URL}/webhooks/acme`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: text,
    });
  }

  it("is refused 412 when the condition does not hold, and written when it does", async () => {
    const streamId = await atReview();
    const events = advance("review", "approve");
    const refused = await expectProblem(
      await deliver({ stream_id: streamId, events, if: { current_step: "intake" } }),
      412,
    );
    expect(refused).toMatchObject({ state: { current_step: "review" }, version: 3 });
    await expectVersion(streamId, 3);
    const delivered = await deliver({ stream_id: streamId, events, if: { steps: { review: "active" } } });
    expect(delivered.status).toBe(201);
    await expectVersion(streamId, 5);
  });
});

describe("/openapi.json", () => {
  it("documents `if` on the append body and the 412 answer, on the append and the webhook routes", async () => {
    interface Operation {
      responses: Record<string, unknown>;
      requestBody: { content: { "application/json": { schema: { properties: Record<string, unknown> } } } };
    }
    const doc = await getJson<{ paths: Record<string, Record<string, Operation>> }>("/openapi.json");
    for (const path of ["/streams/{streamId}/events", "/webhooks/{source}"]) {
      const operation = doc.paths[path]?.post;
      expect(Object.keys(operation?.responses ?? {})).toContain("412");
      const condition = operation?.requestBody.content["application/json"].schema.properties.if;
      expect(condition).toMatchObject({
        type: "object",
        additionalProperties: false,
        properties: {
          status: { enum: ["pending", "running", "completed", "failed"] },
          steps: { type: "object" },
          context: { type: "object" },
        },
      });
      expect(JSON.stringify(condition)).toMatch(/412 `condition_failed`/);
    }
  });
});
