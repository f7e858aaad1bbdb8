import { z } from "zod";
import { optionalVariable, requiredVariable } from "./environment-variable";

/**
 * How to reach PostgreSQL, read from the environment (Worker bindings or process.env).
 * In production only DATABASE_URL is set and the driver talks to Neon directly (the
 * Worker over HTTP, https://<host>/sql). Locally DATABASE_HTTP_ENDPOINT names the
 * small server that speaks Neon's HTTP protocol in front of an ordinary PostgreSQL,
 * and DATABASE_WS_PROXY the WebSocket-to-TCP bridge (Node tools, and tests that use a
 * Pool); the driver's settings follow from them, never from code paths.
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
  /** Local development only: the `http://host:port/sql/<secret>` that speaks Neon's SQL-over-HTTP in front of a plain PostgreSQL. */
  DATABASE_HTTP_ENDPOINT: optionalVariable(
    z.string().regex(/^https?:\/\/[^/?#]+(\/[^?#]*)?$/, {
      error: "must look like http://127.0.0.1:5489/sql/<secret> (or https:// for a TLS endpoint)",
    }),
  ),
  /** "production" makes local-only settings (DATABASE_WS_PROXY, DATABASE_HTTP_ENDPOINT) an error. */
  ENVIRONMENT: optionalVariable(z.string()),
};

/** The variables that point the driver at a local stand-in for Neon. */
const LOCAL_ONLY = ["DATABASE_WS_PROXY", "DATABASE_HTTP_ENDPOINT"] as const;

/** The bridge and the HTTP endpoint are for a local PostgreSQL; in production they would route Neon traffic through a stranger. */
export function refuseBridgeInProduction(
  settings: { [name in (typeof LOCAL_ONLY)[number]]?: string | undefined } & {
    ENVIRONMENT?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (settings.ENVIRONMENT !== "production") return;
  for (const name of LOCAL_ONLY) {
    if (settings[name] === undefined) continue;
    ctx.addIssue({
      code: "custom",
      path: [name],
      message: "is a local-development setting and must not be set in production (ENVIRONMENT=production)",
    });
  }
}

/** The database variables alone, for Node tools (the Worker reads them with the rest of its configuration). */
export const DatabaseVariables = z.object(DATABASE_VARIABLES).superRefine(refuseBridgeInProduction);

/** What the driver needs to connect, over WebSocket (a Pool) or HTTP. */
export interface DatabaseSettings {
  DATABASE_URL: string;
  DATABASE_WS_PROXY?: string;
  DATABASE_HTTP_ENDPOINT?: string;
}

/** The settings the driver needs, from the parsed variables (ENVIRONMENT was for the check only). */
export function databaseSettings(variables: {
  DATABASE_URL: string;
  DATABASE_WS_PROXY?: string | undefined;
  DATABASE_HTTP_ENDPOINT?: string | undefined;
}): DatabaseSettings {
  const { DATABASE_URL, DATABASE_WS_PROXY, DATABASE_HTTP_ENDPOINT } = variables;
  return {
    DATABASE_URL,
    ...(DATABASE_WS_PROXY === undefined ? {} : { DATABASE_WS_PROXY }),
    ...(DATABASE_HTTP_ENDPOINT === undefined ? {} : { DATABASE_HTTP_ENDPOINT }),
  };
}
