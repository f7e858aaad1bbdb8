// Exponential backoff with full jitter: attempt n (0-based) waits a random time in
// [0, min(maxMs, baseMs * 2^n)], at least what the server asked for with Retry-After.

export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  attempts?: number;
  /** The first backoff's ceiling in ms (default 100). */
  baseMs?: number;
  /** No backoff waits longer than this (default 5000). */
  maxMs?: number;
  /** Each attempt is abandoned (and retried) after this many ms (default 30000). */
  timeoutMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = {
  attempts: 8,
  baseMs: 100,
  maxMs: 5000,
  timeoutMs: 30_000,
};

export function backoffDelay(
  attempt: number,
  options: Pick<Required<RetryOptions>, "baseMs" | "maxMs">,
  retryAfterMs = 0,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.min(options.maxMs, Math.max(retryAfterMs, Math.floor(random() * ceiling)));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Retry-After in ms (seconds or an HTTP date), 0 when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (!header) return 0;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? 0 : Math.max(0, date - now);
}
