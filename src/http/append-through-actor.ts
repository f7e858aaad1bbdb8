import type { Context } from "hono";
import type { AppendCommand } from "../actor/actor-protocol";
import { failureResponse } from "./problem";
import { AppendResponse } from "./schemas";
import { jsonContent } from "./serve-route";
import { streamActor } from "./stream-actor-stub";

// An append through the stream's actor, answered as POST /streams/:streamId/events
// answers it: 201 (or 200 for an idempotent repeat) with the AppendResponse body, the
// new version as ETag, Server-Timing and Location; a problem document for a refusal.
// Shared by the append route and the webhook route.

export async function appendThroughActor<E extends { Bindings: Env }>(
  c: Context<E>,
  command: AppendCommand,
  startedAt: number = Date.now(),
): Promise<Response> {
  const { streamId } = command;
  const outcome = await streamActor(c.env, streamId).append(command);
  if (!outcome.ok) return failureResponse(c, outcome);
  const { result, timing } = outcome;
  const totalMs = Date.now() - startedAt;
  c.header("etag", `"${result.version}"`);
  c.header(
    "server-timing",
    `queue;dur=${timing.queueMs}, db;dur=${timing.databaseMs}, actor;dur=${timing.totalMs}, total;dur=${totalMs}`,
  );
  c.header("location", `/streams/${streamId}/events?from=${result.versions[0] ?? result.version}`);
  return c.json(
    {
      stream_id: result.streamId,
      stream_type: result.streamType,
      version: result.version,
      versions: result.versions,
      event_ids: result.eventIds,
      idempotent: result.idempotent,
    },
    result.idempotent ? 200 : 201,
  );
}

/** The documented answers of an append: 201, or 200 for a repeat (`repeat` says what one is on this route). */
export function appendResponses(repeat: string) {
  return {
    201: { description: "Appended", ...jsonContent(AppendResponse) },
    200: { description: repeat, ...jsonContent(AppendResponse) },
  };
}
