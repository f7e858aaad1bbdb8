import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { WorkflowEvent } from "../../src/events/types";

it("parses an event inside workerd", async () => {
  const parsed = WorkflowEvent.parse({ type: "workflow_failed", error: "x", recoverable: true, failed_at: "2026-01-01T00:00:00+01:00" });
  expect(parsed).toEqual({ type: "workflow_failed", error: "x", recoverable: true, failed_at: "2025-12-31T23:00:00Z" });
  expect((env as unknown as Record<string,string>).DATABASE_WS_PROXY).toMatch(/^ws:/);
});
