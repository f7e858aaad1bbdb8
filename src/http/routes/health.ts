import { createRoute } from "@hono/zod-openapi";
import { withTimeout } from "../../db/with-timeout";
import { describeError, logServiceFault, unavailable } from "../../events/failure";
import { openRoute } from "../access-control";
import type { App } from "../app-env";
import { requireConfig } from "../misconfigured";
import { problem, problemResponses } from "../problem";
import { requestStore } from "../request-database";
import { HealthResponse } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";

const route = createRoute({
  method: "get",
  path: "/healthz",
  summary: "Health: the Worker runs and the database answers",
  middleware: [
    openRoute("load balancers and monitors ask it; it tells nothing but health"),
    requireConfig,
  ] as const,
  responses: {
    200: { description: "Healthy", ...jsonContent(HealthResponse) },
    ...problemResponses(503),
  },
});

export function registerHealth(app: App): void {
  serveRoute(app, route, async (c) => {
    const config = c.get("config");
    const { store, release } = requestStore(c, config);
    try {
      await withTimeout(store.ping(), config.databaseTimeoutMs);
      return c.json({ status: "ok" as const, database: "ok" as const }, 200);
    } catch (error) {
      logServiceFault(unavailable(error), error, { operation: "health" });
      const reason = describeError(error);
      return problem(c, {
        status: 503,
        code: "unavailable",
        title: "Database unavailable",
        detail: `The database did not answer: ${reason}.`,
        headers: {
          "retry-after": "5",
        },
      });
    } finally {
      release();
    }
  });
}
