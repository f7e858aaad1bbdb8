import type { Context } from "hono";
import { readWorkerConfig, type WorkerConfig } from "../config/worker-config";
import { problem } from "./problem";

/** The Worker's configuration, or the 503 that names the variable to fix and how. */
export function configOrMisconfigured(c: Context<{ Bindings: Env }>): WorkerConfig | Response {
  const result = readWorkerConfig(c.env);
  if (result.ok) return result.config;
  return problem(
    c,
    503,
    "misconfigured",
    "Server misconfigured",
    `${result.error.message} ${result.error.howToFix}`,
  );
}
