import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { describeError } from "../events/failure";
import { log } from "../log";
import { openRoute, requireDeclaredAccess } from "./access-control";
import type { App, AppEnv } from "./app-env";
import { notFound } from "./not-found";
import { problem, validationProblem } from "./problem";
import { registerAppendEvents } from "./routes/append-events";
import { registerHealth } from "./routes/health";
import { registerListStreams } from "./routes/list-streams";
import { registerReadEvents } from "./routes/read-events";
import { registerReadFeed } from "./routes/read-feed";
import { registerStreamHead } from "./routes/stream-head";
import { registerStreamState } from "./routes/stream-state";
import { registerSubscriptions } from "./routes/subscriptions";
import { registerWatchFeed } from "./routes/watch-feed";
import { registerWatchStream } from "./routes/watch-stream";
import { registerWebhooks } from "./routes/webhooks";

const API_DESCRIPTION = {
  openapi: "3.1.0",
  info: {
    title: "glyph-streams",
    version: "0.1.0",
    description: "Event-sourced workflow streams: one actor per stream in front of PostgreSQL.",
  },
};

/** The Worker's HTTP API. Every error is an application/problem+json document. */
export function createApp(): App {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return validationProblem(c, result.error as z.ZodError, result.target);
      return undefined;
    },
  });

  registerHealth(app);
  registerListStreams(app);
  registerStreamHead(app);
  registerReadEvents(app);
  registerAppendEvents(app);
  registerStreamState(app);
  registerWebhooks(app);
  registerWatchStream(app);
  registerReadFeed(app);
  registerWatchFeed(app);
  registerSubscriptions(app);
  app.get("/openapi.json", openRoute("it describes the API and holds no data"), (c) =>
    c.json(app.getOpenAPI31Document(API_DESCRIPTION)),
  );
  requireDeclaredAccess(app.routes);

  app.notFound(notFound(app));

  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      const status = error.status as ContentfulStatusCode;
      const detail =
        status === 400 && /JSON/i.test(error.message)
          ? "The body is not valid JSON; check quotes, commas and brackets."
          : error.message;
      return problem(c, {
        status,
        code: status === 400 ? "invalid_request" : "http_error",
        title: "Request refused",
        detail,
      });
    }
    const streamId = c.req.param("streamId");
    log({
      event: "request_failed",
      level: "error",
      ...(streamId === undefined ? {} : { stream_id: streamId }),
      operation: `${c.req.method} ${c.req.routePath}`,
      code: "internal_error",
      error: error.name,
      cause: describeError(error),
    });
    return problem(c, {
      status: 500,
      code: "internal_error",
      title: "Internal error",
      detail: "The server failed while handling this request; it has been logged. Retrying may help.",
    });
  });

  return app;
}
