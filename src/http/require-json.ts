import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./app-env";
import { problem } from "./problem";

/** Refuses (415) a body that is not declared as JSON; `what` names the body in the sentence. */
export function requireJson(what: string): MiddlewareHandler<AppEnv> {
  return createMiddleware<AppEnv>(async (c, next) => {
    const type = c.req.header("content-type")?.split(";")[0]?.trim().toLowerCase();
    if (type !== "application/json") {
      return problem(c, {
        status: 415,
        code: "unsupported_media_type",
        title: "Unsupported media type",
        detail: `Send ${what} as JSON with the header Content-Type: application/json.`,
      });
    }
    await next();
  });
}
