import type { Context, MiddlewareHandler } from "hono";
import type { StreamAccess } from "../actor/actor-protocol";
import { WATCH_PROTOCOL } from "../actor/watch-messages";
import type { Scope } from "../auth/access-tokens";
import { authenticate } from "../auth/authenticate";
import { hasScope, type Principal } from "../auth/principal";
import { configOrMisconfigured } from "./misconfigured";
import { problem } from "./problem";

// Bearer-token access control for every route but /healthz, /openapi.json (it
// describes the API and holds no data) and the webhooks (they carry their own signatures).

const principals = new WeakMap<Request, Principal>();

/** The caller of this request, once access control let it through. */
export function requestPrincipal(c: Context): Principal | undefined {
  return principals.get(c.req.raw);
}

/** The limits from the caller's token that the stream actor checks. */
export function streamAccess(c: Context): StreamAccess {
  const types = requestPrincipal(c)?.streamTypes;
  return types === undefined ? {} : { allowedStreamTypes: [...types] };
}

const OPEN_PATHS = [/^\/healthz$/, /^\/openapi\.json$/, /^\/webhooks\//];
const STREAM_PATH = /^\/streams\/([^/]+)(\/|$)/;

function requiredScope(method: string, path: string): Scope {
  if (method === "POST" && /^\/streams\/[^/]+\/events$/.test(path)) return "append";
  return "read";
}

export const accessControl: MiddlewareHandler<{ Bindings: Env }> = async (c, next) => {
  const path = new URL(c.req.url).pathname;
  if (OPEN_PATHS.some((pattern) => pattern.test(path))) return next();
  const config = configOrMisconfigured(c);
  if (config instanceof Response) return config;
  const entries = config.accessTokens;
  const challenge = { "www-authenticate": 'Bearer realm="glyph-streams"' };
  if (entries.length === 0) {
    return problem(
      c,
      401,
      "unauthorized",
      "Unauthorized",
      "No access tokens are configured on this server, so nothing can be accessed; set the AUTH_TOKENS secret (see README).",
      {},
      challenge,
    );
  }
  const result = await authenticate(c.req.raw.headers, entries);
  if (!result.ok) {
    const detail = {
      missing: `Send a token: Authorization: Bearer <token> (a browser's WebSocket: the subprotocol bearer.<token> beside ${WATCH_PROTOCOL}).`,
      malformed:
        "The Authorization header must be exactly 'Bearer <token>' with a token of 16 to 512 URL-safe characters.",
      unknown: "The token is not valid here; check for a typo or ask for a new one.",
    }[result.reason];
    return problem(c, 401, "unauthorized", "Unauthorized", detail, {}, challenge);
  }
  const { principal } = result;
  const scope = requiredScope(c.req.method, path);
  if (!hasScope(principal, scope)) {
    return problem(
      c,
      403,
      "forbidden",
      "Forbidden",
      `Token ${principal.tokenId} lacks the ${scope} scope that ${c.req.method} ${path} needs.`,
    );
  }
  const streamId = STREAM_PATH.exec(path)?.[1]?.toLowerCase();
  if (principal.streams !== undefined) {
    if (streamId === undefined) {
      return problem(
        c,
        403,
        "forbidden",
        "Forbidden",
        `Token ${principal.tokenId} is limited to particular streams; address them one by one under /streams/<id>.`,
      );
    }
    if (!principal.streams.has(streamId)) {
      return problem(
        c,
        403,
        "forbidden",
        "Forbidden",
        `Token ${principal.tokenId} may not access stream ${streamId}.`,
      );
    }
  }
  principals.set(c.req.raw, principal);
  return next();
};
