import { CodedError } from "../events/failure";
import type { WorkflowEventType } from "../events/types";
import type { WorkflowStatus } from "./workflow-state";

/**
 * An event that the state rules refuse in the state it met. The message is a
 * sentence naming the event, the step and the state, so it can be shown to a person.
 */
export class InvalidEventSequence extends CodedError {
  constructor(
    message: string,
    readonly eventType: WorkflowEventType,
    readonly stepId: string | null,
    readonly status: WorkflowStatus,
    /** The version of the state the event was applied to. */
    readonly atVersion: number,
  ) {
    super("invalid_event_sequence", message, {
      event_type: eventType,
      step_id: stepId,
      status,
      version: atVersion,
    });
  }
}
