import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";

// What `npm start` passes to the Worker besides the database: the access tokens and
// the Worker settings found in the environment or in .dev.vars (which wrangler reads
// too), and where each came from, so that the two never disagree silently.

/** A mistake in the configuration the person running npm start can fix: one line, no stack. */
export class StartError extends Error {}

/**
 * Worker settings passed on from the environment, as wrangler passes on those in
 * .dev.vars: the environment wins. DATABASE_URL and AUTH_TOKENS are handled on their own.
 */
const WORKER_SETTINGS = ["WEBHOOK_SECRETS", "DATABASE_TIMEOUT_MS"] as const;

export interface Access {
  /** The value for AUTH_TOKENS: the configured tokens and the development token. */
  authTokens: string;
  /** The development token made for this run. */
  token: string;
  description: string;
}

/** Worker settings from .dev.vars in `root`. */
export function readDevVars(root: string): Record<string, string> {
  const path = join(root, ".dev.vars");
  if (!existsSync(path)) return {};
  return Object.fromEntries(
    Object.entries(parseEnv(readFileSync(path, "utf8"))).filter(
      (entry): entry is [string, string] => typeof entry[1] === "string",
    ),
  );
}

/**
 * Every route but /healthz, /openapi.json and the webhooks wants a bearer token. A fresh
 * admin token is made for every run and added to the tokens configured in AUTH_TOKENS
 * (the environment, else .dev.vars), so that configuring a read-only token for a test
 * does not lock the developer out. The Worker only ever gets tokens' SHA-256 hashes.
 */
export function accessTokens(env: NodeJS.ProcessEnv, devVars: Record<string, string>): Access {
  const fromEnvironment = env.AUTH_TOKENS;
  const [configured, source] =
    fromEnvironment !== undefined && fromEnvironment !== ""
      ? [fromEnvironment, "the environment"]
      : devVars.AUTH_TOKENS !== undefined
        ? [devVars.AUTH_TOKENS, ".dev.vars"]
        : [undefined, undefined];
  let tokens: unknown[] = [];
  if (configured !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(configured);
    } catch {
      throw new StartError(
        `AUTH_TOKENS from ${source} is not JSON; it must be a JSON list of tokens (see README).`,
      );
    }
    if (!Array.isArray(parsed)) {
      throw new StartError(`AUTH_TOKENS from ${source} must be a JSON list of tokens (see README).`);
    }
    tokens = parsed;
  }
  const token = `gst_${randomBytes(32).toString("base64url")}`;
  const sha256 = createHash("sha256").update(token).digest("hex");
  const development = { id: "npm-start", sha256, scopes: ["admin"] };
  return {
    authTokens: JSON.stringify([...tokens, development]),
    token,
    description:
      (configured === undefined ? "" : `${tokens.length} token(s) from AUTH_TOKENS in ${source}, and `) +
      "a development token with every scope, valid until this npm start stops",
  };
}

/** The Worker settings found in the environment or .dev.vars, and where each came from. */
export function workerSettings(
  env: NodeJS.ProcessEnv,
  devVars: Record<string, string>,
): { vars: Record<string, string>; lines: string[] } {
  const vars: Record<string, string> = {};
  const lines: string[] = [];
  for (const name of WORKER_SETTINGS) {
    const value = env[name];
    if (value !== undefined && value !== "") {
      vars[name] = value;
      lines.push(
        `${name} from the environment${devVars[name] === undefined ? "" : " (it overrides the one in .dev.vars)"}`,
      );
    } else if (devVars[name] !== undefined) {
      lines.push(`${name} from .dev.vars`);
    }
  }
  return { vars, lines };
}
