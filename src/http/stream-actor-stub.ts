import type { StreamActorApi } from "../actor/actor-protocol";
import { workerConfig } from "../config/worker-config";

/**
 * The stream's actor. Ids are lower-case UUIDs, so one stream always maps to one actor.
 * A new actor is created where ACTOR_LOCATION_HINT says (beside the database), if set;
 * an actor that exists stays where it is, whatever the hint.
 */
export function streamActor(env: Env, streamId: string): StreamActorApi {
  const namespace = env.STREAM_ACTOR;
  const locationHint = workerConfig(env).actorLocationHint;
  const id = namespace.idFromName(streamId);
  const stub = locationHint === undefined ? namespace.get(id) : namespace.get(id, { locationHint });
  // The stub's RPC methods are exactly StreamActorApi; the runtime's types wrap them in Rpc.* helpers.
  return stub as unknown as StreamActorApi;
}
