import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { WorkerConfig } from "../../config/worker-config";
import { withTimeout } from "../../db/with-timeout";
import { logServiceFault, unavailable } from "../../events/failure";
import { openRoute } from "../access-control";
import type { App } from "../app-env";
import { requireConfig } from "../misconfigured";
import { problem, problemResponses } from "../problem";
import { requestStore } from "../request-database";
import { HealthResponse } from "../schemas";
import { jsonContent, serveRoute } from "../serve-route";

/**
 * How long one answer of the database serves every /healthz of an isolate. The route is
 * open to anyone, so it must cost the database nothing per call: at most one ping per
 * isolate in this window, however many callers ask, and callers that arrive while it is
 * in flight wait for that same ping.
 */
export const HEALTH_ANSWER_MS = 5_000;

const route = createRoute({
  method: "get",
  path: "/healthz",
  summary: "Health: the Worker runs and the database answers",
  description:
    `The database's answer is shared by every call for up to ${HEALTH_ANSWER_MS / 1000} seconds; ` +
    "`Age` says how many seconds ago it was asked.",
  middleware: [
    openRoute("load balancers and monitors ask it; it tells nothing but health"),
    requireConfig,
  ] as const,
  responses: {
    200: { description: "Healthy", ...jsonContent(HealthResponse) },
    ...problemResponses(503),
  },
});

interface Ping {
  /** Which database was asked: a configuration change must not be answered from the old one. */
  database: string;
  startedAt: number;
  healthy: Promise<boolean>;
}

// Per isolate: the last ping, answered or still in flight.
let last: Ping | undefined;

/** The database's health, from the last ping if it is recent enough, or from a new one. */
function ping(c: Context, config: WorkerConfig): Ping {
  const database = JSON.stringify(config.database);
  const now = Date.now();
  if (last !== undefined && last.database === database && now - last.startedAt < HEALTH_ANSWER_MS)
    return last;
  const { store, release } = requestStore(c, config);
  const healthy = withTimeout(store.ping(), config.databaseTimeoutMs)
    .then(() => true)
    .catch((error: unknown) => {
      logServiceFault(unavailable(), error, { operation: "health" });
      return false;
    })
    .finally(release);
  last = { database, startedAt: now, healthy };
  return last;
}

export function registerHealth(app: App): void {
  serveRoute(app, route, async (c) => {
    const answer = ping(c, c.get("config"));
    const healthy = await answer.healthy;
    const age = String(Math.floor((Date.now() - answer.startedAt) / 1000));
    if (healthy) return c.json({ status: "ok" as const, database: "ok" as const }, 200, { age });
    return problem(c, {
      status: 503,
      code: "unavailable",
      title: "Database unavailable",
      // Never what the driver said: this route is open to anyone (the log has the cause).
      detail: "The database did not answer; the operator can find the cause in the logs. Retry later.",
      headers: { "retry-after": "5", age },
    });
  });
}
