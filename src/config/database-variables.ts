import { z } from "zod";
import { optionalVariable, requiredVariable } from "./environment-variable";

/**
 * How to reach PostgreSQL, read from the environment (Worker bindings or process.env).
 * In production only DATABASE_URL is set and the driver talks to Neon directly.
 * Locally DATABASE_WS_PROXY names the WebSocket-to-TCP bridge in front of an
 * ordinary PostgreSQL; the driver's settings follow from it, never from code paths.
 */
export const DATABASE_VARIABLES = {
  /** A postgres:// URL; a secret in production (`wrangler secret put DATABASE_URL`). */
  DATABASE_URL: requiredVariable(
    z
      .string({ error: "is not set: give a postgres:// connection string" })
      .regex(/^postgres(ql)?:\/\//, { error: "must be a postgres:// or postgresql:// URL" }),
  ),
  /** Local development only: the `ws://host:port/v1/<secret>` of the WebSocket bridge in front of a plain PostgreSQL. */
  DATABASE_WS_PROXY: optionalVariable(
    z.string().regex(/^wss?:\/\/[^/?#]+(\/[^?#]*)?$/, {
      error: "must look like ws://127.0.0.1:5488/v1/<secret> (or wss:// for a TLS proxy)",
    }),
  ),
  /** "production" makes local-only settings (DATABASE_WS_PROXY) an error. */
  ENVIRONMENT: optionalVariable(z.string()),
};

/** The bridge is for a local PostgreSQL; in production it would route Neon traffic through a stranger. */
export function refuseBridgeInProduction(
  settings: { DATABASE_WS_PROXY?: string | undefined; ENVIRONMENT?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (settings.ENVIRONMENT === "production" && settings.DATABASE_WS_PROXY !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["DATABASE_WS_PROXY"],
      message: "is a local-development setting and must not be set in production (ENVIRONMENT=production)",
    });
  }
}

/** The database variables alone, for Node tools (the Worker reads them with the rest of its configuration). */
export const DatabaseVariables = z.object(DATABASE_VARIABLES).superRefine(refuseBridgeInProduction);

/** What a pool needs to connect. */
export interface DatabaseSettings {
  DATABASE_URL: string;
  DATABASE_WS_PROXY?: string;
}

/** The settings a pool needs, from the parsed variables (ENVIRONMENT was for the check only). */
export function databaseSettings(variables: {
  DATABASE_URL: string;
  DATABASE_WS_PROXY?: string | undefined;
}): DatabaseSettings {
  const { DATABASE_URL, DATABASE_WS_PROXY } = variables;
  return DATABASE_WS_PROXY === undefined ? { DATABASE_URL } : { DATABASE_URL, DATABASE_WS_PROXY };
}
