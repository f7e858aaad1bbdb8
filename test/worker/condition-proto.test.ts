import { describe, expect, it } from "vitest";
import { started } from "../support/event-builders";
import { api, expectNoStream, expectProblem, problemCode } from "../support/http-client";

// A condition naming a step called "__proto__" (an own key, as JSON.parse makes it)
// reaches the stream actor over RPC and is judged like any other: it once failed the
// structured clone on the way and answered 500 DataCloneError.
describe("a condition with an own __proto__ key", () => {
  it("is judged by the actor: 412 on a new stream, nothing written", async () => {
    const streamId = crypto.randomUUID();
    const body = `{"events":[{"event":${JSON.stringify(started())}}],"if":{"status":"pending","steps":{"__proto__":"active"}}}`;
    const response = await api(`/streams/${streamId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const problem = await expectProblem(response, 412);
    expect(problemCode(problem)).toBe("condition_failed");
    await expectNoStream(streamId);
  });
});
