import { z } from "zod";
import { Uuid } from "../events/wire";

// Which streams a credential reaches: a bearer token (AUTH_TOKENS) and a webhook source
// (WEBHOOK_SECRETS) are limited the same way, by the same fields, checked by the same
// two rules: the stream's id at the edge (coversStreamId), its type in the stream's
// actor, the one place that knows it without a query (forbiddenType, actor/stream-access.ts).

/** The limit fields of a credential's entry; absent means no limit. */
export const StreamLimitFields = {
  /** When present, only these streams. */
  streams: z.array(Uuid).optional(),
  /** When present, only streams of these types. */
  stream_types: z.array(z.string().min(1)).optional(),
};

export interface StreamScope {
  /** Undefined: any stream. */
  streams: ReadonlySet<string> | undefined;
  /** Undefined: streams of any type. */
  streamTypes: readonly string[] | undefined;
}

/** The scope of an entry with the limit fields. */
export function streamScopeOf(entry: {
  streams?: string[] | undefined;
  stream_types?: string[] | undefined;
}): StreamScope {
  return {
    streams: entry.streams === undefined ? undefined : new Set(entry.streams),
    streamTypes: entry.stream_types,
  };
}

/** Whether the scope lets its holder reach the stream with this id (its type is checked by the actor). */
export function coversStreamId(scope: StreamScope, streamId: string): boolean {
  return scope.streams === undefined || scope.streams.has(streamId.toLowerCase());
}

/** The limit the stream's actor checks, as an append command or a read carries it. */
export function typeLimit(scope: StreamScope): { allowedStreamTypes?: string[] } {
  return scope.streamTypes === undefined ? {} : { allowedStreamTypes: [...scope.streamTypes] };
}
