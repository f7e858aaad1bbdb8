import type { Context } from "hono";
import { log } from "../log";
import { problem } from "./problem";

// Requests per credential (issue 10, row 3), counted by Cloudflare's Rate Limiting
// binding REQUEST_RATE_LIMIT ([[env.production.ratelimits]] in wrangler.toml; production
// refuses to run without it, a local run has none: ARCHITECTURE, decision 27). Each
// bearer token and each webhook source has its own count; a request beyond the limit is
// answered 429 before it reaches any actor or the database.

/** The binding's period (wrangler.toml keeps `period = 10`): how long a client over the limit waits. */
export const RATE_LIMIT_PERIOD_SECONDS = 10;

/** The key a credential is counted under. */
export type RateLimitKey = `token:${string}` | `webhook:${string}`;

/**
 * Counts one request for `key` with the configured binding (none locally: no limit):
 * true when it is over the limit. Should the binding itself fail, the request goes
 * through (logged): the limit bounds abuse, and its own outage must not take the API
 * down with it.
 */
export async function overRateLimit(limiter: RateLimit | undefined, key: RateLimitKey): Promise<boolean> {
  if (limiter === undefined) return false;
  try {
    const { success } = await limiter.limit({ key });
    return !success;
  } catch (error) {
    log({
      event: "rate_limit_unavailable",
      level: "warn",
      cause: error instanceof Error ? error.message : String(error),
    });
    return false;
  }
}

/** 429 for `who` ("Token ci", "Webhook source acme"), with Retry-After. */
export function rateLimited(c: Context, who: string): Response {
  return problem(c, {
    status: 429,
    code: "rate_limited",
    title: "Too many requests",
    detail:
      `${who} sent more requests than its limit allows in ${RATE_LIMIT_PERIOD_SECONDS} seconds; ` +
      `retry after ${RATE_LIMIT_PERIOD_SECONDS} seconds, and spread requests out (or ask the operator for a higher limit).`,
    headers: { "retry-after": String(RATE_LIMIT_PERIOD_SECONDS) },
  });
}
