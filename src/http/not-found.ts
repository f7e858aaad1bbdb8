import type { Context, NotFoundHandler } from "hono";
import { authenticateCaller, declaredAccess, type RouteAccess } from "./access-control";
import type { App, AppEnv } from "./app-env";
import { problem } from "./problem";

/** What the app serves at a path, by method, from its own routes (not its middleware). */
function servedAt(app: App, path: string): Array<{ method: string; access: RouteAccess | undefined }> {
  const methods = [...new Set(app.routes.map((route) => route.method).filter((method) => method !== "ALL"))];
  return methods.flatMap((method) => {
    const [matches] = app.router.match(method, path);
    const handlers = matches.map(([[handler, route]]) => ({ handler, route }));
    const own = handlers.filter(({ route }) => route.method === method);
    if (own.length === 0) return [];
    const access = own
      .map(({ handler }) => declaredAccess(handler))
      .find((declared) => declared !== undefined);
    return [{ method, access }];
  });
}

/**
 * 405 with Allow when the path is served with other methods, 404 when it is not served
 * at all. Only a path whose every route is open answers without a token: anything
 * else says nothing about what exists until the caller is known.
 */
export function notFound(app: App): NotFoundHandler<AppEnv> {
  return async (c: Context<AppEnv>) => {
    const served = servedAt(app, c.req.path);
    const open = served.length > 0 && served.every(({ access }) => access?.token === false);
    if (!open) {
      const principal = await authenticateCaller(c);
      if (principal instanceof Response) return principal;
    }
    const path = new URL(c.req.url).pathname;
    if (served.length > 0) {
      const allowed = served.map(({ method }) => method);
      return problem(c, {
        status: 405,
        code: "method_not_allowed",
        title: "Method not allowed",
        detail: `${c.req.method} is not served at ${path}; use ${allowed.join(" or ")}.`,
        headers: { allow: allowed.join(", ") },
      });
    }
    return problem(c, {
      status: 404,
      code: "not_found",
      title: "Not found",
      detail: `Nothing is served at ${path}; see /openapi.json for the API.`,
    });
  };
}
