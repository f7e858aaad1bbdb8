import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { readWorkerConfig, type WorkerConfig } from "../config/worker-config";
import { log } from "../log";
import type { AppEnv } from "./app-env";
import { problem } from "./problem";

/** The Worker's configuration, or the 503 that names the variable to fix and how. */
export function configOrMisconfigured(c: Context<AppEnv>): WorkerConfig | Response {
  const result = readWorkerConfig(c.env);
  if (result.ok) return result.config;
  log({
    event: "request_failed",
    level: "error",
    operation: "configuration",
    code: "misconfigured",
    variables: result.error.variables,
    cause: result.error.message,
  });
  return problem(c, {
    status: 503,
    code: "misconfigured",
    title: "Server misconfigured",
    detail: `${result.error.message} ${result.error.howToFix}`,
  });
}

/** For an open route that reads the configuration: sets `config`, or answers 503. */
export const requireConfig = createMiddleware<AppEnv>(async (c, next) => {
  const config = configOrMisconfigured(c);
  if (config instanceof Response) return config;
  c.set("config", config);
  await next();
});
