import type { StreamActorApi } from "../actor/actor-protocol";

/** The stream's actor. Ids are lower-case UUIDs, so one stream always maps to one actor. */
export function streamActor(env: Env, streamId: string): StreamActorApi {
  const namespace = env.STREAM_ACTOR;
  // The stub's RPC methods are exactly StreamActorApi; the runtime's types wrap them in Rpc.* helpers.
  return namespace.get(namespace.idFromName(streamId)) as unknown as StreamActorApi;
}
