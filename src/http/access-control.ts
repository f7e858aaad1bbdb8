import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { RouterRoute } from "hono/types";
import type { StreamAccess } from "../actor/actor-protocol";
import { WATCH_PROTOCOL } from "../actor/watch-messages";
import type { Scope } from "../auth/access-tokens";
import { authenticate } from "../auth/authenticate";
import { hasScope, type Principal } from "../auth/principal";
import { coversStreamId, typeLimit } from "../auth/stream-scope";
import type { AppEnv } from "./app-env";
import { configOrMisconfigured } from "./misconfigured";
import { problem } from "./problem";
import { overRateLimit, rateLimited } from "./rate-limit";

// Who may call a route, declared by the route itself as the first of its middleware:
// requireScope(scope, reach) for a bearer token, openRoute(why) for none. createApp
// refuses to build an app with a route that declares neither, so a new route cannot
// silently inherit a permission.

/**
 * Which streams a route reaches, so a token limited to particular streams is checked:
 * "one stream" is the `streamId` of the path; "many streams" is refused to such a token.
 */
export type Reach = "one stream" | "many streams";

export type RouteAccess = { token: true; scope: Scope; reach: Reach } | { token: false; why: string };

// Static: what each access middleware declares, read when the app is built and for 405s.
const declarations = new WeakMap<object, RouteAccess>();

/** The access a route handler declares, if it is an access middleware. */
export function declaredAccess(handler: object): RouteAccess | undefined {
  return declarations.get(handler);
}

function declare(access: RouteAccess, middleware: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  declarations.set(middleware, access);
  return middleware;
}

/** A route that takes no token; `why` says what protects it instead, or why nothing needs to. */
export function openRoute(why: string): MiddlewareHandler<AppEnv> {
  return declare(
    { token: false, why },
    createMiddleware<AppEnv>((_c, next) => next()),
  );
}

const CHALLENGE = { "www-authenticate": 'Bearer realm="glyph-streams"' };

/** The caller by its bearer token, or the 503/401 (or 429 over its rate limit) that refuses the request. */
export async function authenticateCaller(c: Context<AppEnv>): Promise<Principal | Response> {
  const config = configOrMisconfigured(c);
  if (config instanceof Response) return config;
  c.set("config", config);
  if (config.accessTokens.length === 0) {
    return problem(c, {
      status: 401,
      code: "unauthorized",
      title: "Unauthorized",
      detail:
        "No access tokens are configured on this server, so nothing can be accessed; set the AUTH_TOKENS secret (see README).",
      headers: CHALLENGE,
    });
  }
  const result = await authenticate(c.req.raw.headers, config.accessTokens);
  if (result.ok) {
    const { tokenId } = result.principal;
    if (await overRateLimit(config.requestRateLimit, `token:${tokenId}`))
      return rateLimited(c, `Token ${tokenId}`);
    return result.principal;
  }
  const detail = {
    missing: `Send a token: Authorization: Bearer <token> (a browser's WebSocket: the subprotocol bearer.<token> beside ${WATCH_PROTOCOL}).`,
    malformed:
      "The Authorization header must be exactly 'Bearer <token>' with a token of 16 to 512 URL-safe characters.",
    unknown: "The token is not valid here; check for a typo or ask for a new one.",
  }[result.reason];
  return problem(c, { status: 401, code: "unauthorized", title: "Unauthorized", detail, headers: CHALLENGE });
}

/** Why the principal may not make this request, or undefined when it may. */
function refusal(c: Context<AppEnv>, principal: Principal, scope: Scope, reach: Reach): string | undefined {
  if (!hasScope(principal, scope)) {
    const path = new URL(c.req.url).pathname;
    return `Token ${principal.tokenId} lacks the ${scope} scope that ${c.req.method} ${path} needs.`;
  }
  if (principal.streams === undefined) return undefined;
  if (reach === "many streams") {
    return `Token ${principal.tokenId} is limited to particular streams; address them one by one under /streams/<id>.`;
  }
  const streamId = (c.req.param("streamId") ?? "").toLowerCase();
  if (!coversStreamId(principal, streamId))
    return `Token ${principal.tokenId} may not access stream ${streamId}.`;
  return undefined;
}

/**
 * A route that needs a bearer token with `scope` (admin has every scope), reaching
 * `reach`. Sets `config` and `principal`; answers 503, 401 or 403 otherwise.
 */
export function requireScope(scope: Scope, reach: Reach): MiddlewareHandler<AppEnv> {
  return declare(
    { token: true, scope, reach },
    createMiddleware<AppEnv>(async (c, next) => {
      const principal = await authenticateCaller(c);
      if (principal instanceof Response) return principal;
      const refused = refusal(c, principal, scope, reach);
      if (refused !== undefined)
        return problem(c, { status: 403, code: "forbidden", title: "Forbidden", detail: refused });
      c.set("principal", principal);
      await next();
    }),
  );
}

/** The limits from the caller's token that the stream actor checks. */
export function streamAccess(c: Context<AppEnv>): StreamAccess {
  const principal = c.get("principal");
  // Fails closed: a route that forgot requireScope must not reach a stream unlimited.
  if (principal === undefined)
    throw new Error(`${c.req.method} ${c.req.path} reached a stream without a scope`);
  return typeLimit(principal);
}

/** Throws unless every route of the app declares its access first in its middleware, and once. */
export function requireDeclaredAccess(routes: readonly RouterRoute[]): void {
  const handlers = new Map<string, object[]>();
  for (const route of routes) {
    if (route.method === "ALL") continue;
    const key = `${route.method} ${route.path}`;
    handlers.set(key, [...(handlers.get(key) ?? []), route.handler]);
  }
  const undeclared = [...handlers]
    .filter(
      ([, [first, ...rest]]) =>
        first === undefined ||
        declaredAccess(first) === undefined ||
        rest.some((handler) => declaredAccess(handler) !== undefined),
    )
    .map(([key]) => key);
  if (undeclared.length > 0) {
    throw new Error(
      `Every route declares who may call it, once, with requireScope() or openRoute() first in its middleware; these do not: ${undeclared.join(", ")}.`,
    );
  }
}
