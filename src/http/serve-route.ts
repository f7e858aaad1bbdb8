import type { RouteConfig } from "@hono/zod-openapi";
import type { z } from "zod";
import type { App, RouteContext } from "./app-env";

/**
 * Registers a documented route whose handler answers with plain Responses. Problems
 * carry their own content type and status, which the route's typed-response union
 * cannot express; the cast bridges exactly that and nothing else (inputs stay typed).
 */
export function serveRoute<R extends RouteConfig>(
  app: App,
  route: R,
  handler: (c: RouteContext<R>) => Promise<Response>,
): void {
  app.openapi(route, handler as never);
}

/** The OpenAPI content of a JSON body or response with `schema`. */
export function jsonContent<T extends z.ZodType>(schema: T) {
  return { content: { "application/json": { schema } } };
}
