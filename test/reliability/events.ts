import type { WorkflowEvent } from "../../src/events/types";
import { contextUpdated, started, stepActivated, stepCompleted } from "../support/event-builders";
import type { Random } from "./support";

// The events the load writers append: always valid on a running workflow (unique step
// ids per writer and operation), or, when asked, a batch that breaks the rules in its
// last event, so the whole append must be refused with nothing written.

const AT = "2026-03-01T10:00:00Z";

export { started };

export interface Composed {
  events: WorkflowEvent[];
  /** The last event breaks the workflow rules (a step completed that was never activated). */
  invalid: boolean;
}

export function composeEvents(
  rng: Random,
  writer: number,
  op: number,
  invalid: "never" | "sometimes" | "always",
): Composed {
  const kind =
    invalid === "always"
      ? "invalid"
      : rng.weighted<"context" | "step" | "consensus" | "invalid">([
          [6, "context"],
          [2, "step"],
          [1, "consensus"],
          [invalid === "sometimes" ? 1 : 0, "invalid"],
        ]);
  const step = `w${writer}-s${op}`;
  const context = () =>
    contextUpdated(`w${writer}.k${rng.int(0, 5)}`, {
      writer,
      op,
      n: rng.int(-1_000_000, 1_000_000),
      text: rng.pick(["é✓", "🚀 launch", "ключ", "", "a\nb"]),
    });
  switch (kind) {
    case "context":
      return { events: Array.from({ length: rng.int(1, 3) }, context), invalid: false };
    case "step":
      return {
        events: [stepActivated(step), stepCompleted(step, { op, ok: rng.chance(0.5) })],
        invalid: false,
      };
    case "consensus":
      return {
        events: [
          stepActivated(step),
          {
            type: "consensus_calculated",
            step_id: step,
            agreement: rng.int(0, 100) / 100,
            metric: "majority",
            resolved_by: null,
            calculated_at: AT,
          },
        ],
        invalid: false,
      };
    case "invalid":
      return { events: [context(), stepCompleted(`never-activated-${writer}-${op}`)], invalid: true };
  }
}
