import { z } from "zod";
import { describeIssues } from "../events/wire";

/**
 * How to reach PostgreSQL, read from the environment (Worker bindings or process.env).
 * In production only DATABASE_URL is set and the driver talks to Neon directly.
 * Locally DATABASE_WS_PROXY names the WebSocket-to-TCP bridge in front of an
 * ordinary PostgreSQL; the driver's settings follow from it, never from code paths.
 */
export const DatabaseSettings = z.object({
  DATABASE_URL: z
    .string({ error: "DATABASE_URL is not set: give a postgres:// connection string" })
    .regex(/^postgres(ql)?:\/\//, { error: "DATABASE_URL must be a postgres:// or postgresql:// URL" }),
  DATABASE_WS_PROXY: z
    .string()
    .regex(/^wss?:\/\/[^/?#]+(\/[^?#]*)?$/, {
      error: "DATABASE_WS_PROXY must look like ws://127.0.0.1:5488/v1 (or wss:// for a TLS proxy)",
    })
    .optional(),
});
export type DatabaseSettings = z.infer<typeof DatabaseSettings>;

export function readDatabaseSettings(environment: object): DatabaseSettings {
  const source = environment as Record<string, unknown>;
  const parsed = DatabaseSettings.safeParse({
    DATABASE_URL: source.DATABASE_URL,
    DATABASE_WS_PROXY: source.DATABASE_WS_PROXY || undefined,
  });
  if (!parsed.success) throw new Error(`Database configuration is invalid: ${describeIssues(parsed.error)}`);
  if (source.ENVIRONMENT === "production" && parsed.data.DATABASE_WS_PROXY !== undefined) {
    throw new Error("DATABASE_WS_PROXY is a local-development setting and must not be set in production.");
  }
  return parsed.data;
}
