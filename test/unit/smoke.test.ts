import { expect, it } from "vitest";
import { WorkflowEvent } from "../../src/events/types";

it("parses", () => {
  expect(WorkflowEvent.safeParse({ type: "nope" }).success).toBe(false);
});
