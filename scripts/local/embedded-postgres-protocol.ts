import { z } from "zod";

// What scripts/local/embedded-postgres.ts and the host process it starts say to each
// other: the options (argv), and the one line the host answers with (stdout).

export const HostOptions = z.object({
  /** The cluster's directory; created and initialised when it holds no cluster yet. */
  dataDir: z.string().min(1),
  /** false: the directory is deleted when the server stops (test clusters). */
  persistent: z.boolean(),
  /** Where the server's log goes. */
  logFile: z.string().min(1),
  /** Extra `-c name=value` settings for the server. */
  settings: z.record(z.string(), z.string()),
  /** Listen on this port (a restart where clients look for it again); absent: a free one. */
  port: z.number().int().min(1).max(65_535).optional(),
});
export type HostOptions = z.infer<typeof HostOptions>;

export const HostReady = z.object({
  port: z.number().int().positive(),
  user: z.string(),
  password: z.string(),
  database: z.string(),
  /** Whether this start created the cluster. */
  initialised: z.boolean(),
  serverPid: z.number().int().positive(),
});
export type HostReady = z.infer<typeof HostReady>;

export const HostAnswer = z.union([z.object({ ready: HostReady }), z.object({ error: z.string() })]);
export type HostAnswer = z.infer<typeof HostAnswer>;
