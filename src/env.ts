import type { StreamActor } from "./actor/stream-actor";

/** The Worker's bindings and variables (wrangler.toml, secrets, `wrangler dev --var`). */
export interface Env {
  STREAM_ACTOR: DurableObjectNamespace<StreamActor>;
  /** Secret in production (`wrangler secret put DATABASE_URL`). */
  DATABASE_URL: string;
  /** Local development only: the WebSocket bridge in front of a plain PostgreSQL. */
  DATABASE_WS_PROXY?: string;
  /** How long a database call may take before the request is answered 503 (default 10000). */
  DATABASE_TIMEOUT_MS?: string;
  /** How long the actor keeps an idle database connection open (default 10000). */
  DATABASE_IDLE_TIMEOUT_MS?: string;
  /**
   * Webhook sources and their secrets, as JSON: {"<source>": ["whsec_<base64 key>", ...]}.
   * Several secrets per source let one rotate. Unset: no source is configured.
   */
  WEBHOOK_SECRETS?: string;
  /** JSON list of access tokens by SHA-256 hash, scopes and limits (see README). No tokens: every route answers 401. */
  AUTH_TOKENS?: string;
  /** "production" makes local-only settings an error. */
  ENVIRONMENT?: string;
}
