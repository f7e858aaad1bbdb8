import { DurableObject } from "cloudflare:workers";

export interface Env {
  STREAM_ACTOR: DurableObjectNamespace<StreamActor>;
  DATABASE_URL?: string;
  DATABASE_WS_PROXY?: string;
}

/** One instance per stream: the stream's single writer (built out in the actor issue). */
export class StreamActor extends DurableObject<Env> {}

export default {
  async fetch(): Promise<Response> {
    return new Response("glyph-streams", { headers: { "content-type": "text/plain" } });
  },
} satisfies ExportedHandler<Env>;
