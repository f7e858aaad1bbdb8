import type { FeedEvent } from "../feed/feed-event";
import { signedWebhookHeaders } from "../webhooks/webhook-signature";

// One delivery of a subscription: a POST of a batch of the feed's events, signed as
// Standard Webhooks, and what the receiver's answer means for the next attempt.

/** The first retry waits about this long; each next one twice as long, up to RETRY_MAX_MS. */
export const RETRY_BASE_MS = 1_000;
export const RETRY_MAX_MS = 10 * 60 * 1000;
/** The longest Retry-After honoured. */
const RETRY_AFTER_MAX_MS = 24 * 60 * 60 * 1000;

export interface Delivery {
  webhookId: string;
  events: readonly FeedEvent[];
}

export type DeliveryOutcome = { ok: true } | { ok: false; error: string; retryAfterMs: number | undefined };

/**
 * The webhook-id of a batch, derived from its events so every attempt (and a re-drive)
 * of the same batch carries the same one and a receiver can drop repeats: the event's
 * id for a batch of one, and for a larger one `batch_` and 32 hex digits of the SHA-256
 * of its event ids.
 */
export async function webhookIdOf(events: readonly FeedEvent[]): Promise<string> {
  const [first] = events;
  if (events.length === 1 && first !== undefined) return first.event_id;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(events.map((event) => event.event_id).join(",")),
  );
  const hex = Array.from(new Uint8Array(digest, 0, 16), (byte) => byte.toString(16).padStart(2, "0")).join(
    "",
  );
  return `batch_${hex}`;
}

/** POSTs the delivery to `url`, signed with `key`; the outcome as the next attempt needs it. */
export async function deliver(
  url: string,
  key: Uint8Array,
  subscription: string,
  delivery: Delivery,
  timeoutMs: number,
): Promise<DeliveryOutcome> {
  const body = new TextEncoder().encode(JSON.stringify({ subscription, events: delivery.events }));
  const signed = await signedWebhookHeaders(key, delivery.webhookId, Math.floor(Date.now() / 1000), body);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "glyph-streams", ...signed },
      body,
      // A redirect could lead anywhere, private addresses included: it counts as a failure.
      redirect: "manual",
      signal: abort.signal,
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true };
    const location = response.headers.get("location");
    return {
      ok: false,
      error:
        response.status >= 300 && response.status < 400
          ? `HTTP ${response.status} to ${location ?? "(no location)"}: redirects are not followed; subscribe the final URL`
          : `HTTP ${response.status}`,
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), Date.now()),
    };
  } catch (error) {
    const reason = abort.signal.aborted
      ? `no answer within ${timeoutMs} ms`
      : `the request failed: ${error instanceof Error ? error.message : String(error)}`;
    return { ok: false, error: reason, retryAfterMs: undefined };
  } finally {
    clearTimeout(timer);
  }
}

/** Retry-After as a wait in milliseconds (delay-seconds or an HTTP date), capped at a day; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  const ms = /^\d{1,10}$/.test(text) ? Number(text) * 1000 : Date.parse(text) - nowMs;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS);
}

/**
 * How long to wait before attempt `failed + 1`: exponential from RETRY_BASE_MS, capped at
 * RETRY_MAX_MS, with jitter (between half and all of it, so retries of many subscriptions
 * spread out), and never less than the receiver's Retry-After.
 */
export function retryDelay(
  failed: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(Math.max(failed - 1, 0), 30));
  const jittered = Math.round(exponential / 2 + (random() * exponential) / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}
