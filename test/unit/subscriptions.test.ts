import { describe, expect, it } from "vitest";
import { readWorkerConfig } from "../../src/config/worker-config";
import type { FeedEvent } from "../../src/feed/feed-event";
import { parseRetryAfter, RETRY_MAX_MS, retryDelay, webhookIdOf } from "../../src/subscriptions/delivery";
import { refuseTarget } from "../../src/subscriptions/target-url";

// The pure parts of outbound subscriptions: which URLs are delivered to, the backoff,
// Retry-After, the webhook-id of a batch, and the private-target setting.

describe("subscription targets", () => {
  it("are http(s) URLs without credentials", () => {
    expect(refuseTarget("https://hooks.example.com/glyph", false)).toBeUndefined();
    expect(refuseTarget("http://hooks.example.com:8080/x?y=1", false)).toBeUndefined();
    expect(refuseTarget("ftp://example.com/", true)).toMatch(/scheme ftp/);
    expect(refuseTarget("javascript:alert(1)", true)).toMatch(/scheme javascript/);
    expect(refuseTarget("not a url", true)).toMatch(/not a URL/);
    expect(refuseTarget("https://user:pw@example.com/", true)).toMatch(/credentials/);
    expect(refuseTarget(`https://example.com/${"a".repeat(2048)}`, true)).toMatch(/longer than 2048/);
  });

  it("are refused on loopback, private, link-local and internal addresses unless allowed", () => {
    const internal = [
      "http://127.0.0.1:8080/",
      "http://127.1.2.3/",
      "http://localhost/",
      "http://api.localhost/",
      "http://10.0.0.5/",
      "http://172.16.0.1/",
      "http://172.31.255.255/",
      "http://192.168.1.1/",
      "http://169.254.169.254/latest/meta-data",
      "http://100.64.0.1/",
      "http://0.0.0.0/",
      "http://[::1]/",
      "http://[::]/",
      "http://[fe80::1]/",
      "http://[fd12:3456::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:10.1.2.3]/",
      "http://intranet/",
      "http://printer.local/",
      "http://db.internal/",
      "http://0x7f.0.0.1/",
      "http://2130706433/",
    ];
    for (const url of internal) {
      expect(refuseTarget(url, false), url).toMatch(/loopback, private, link-local or internal/);
      expect(refuseTarget(url, true), url).toBeUndefined();
    }
    for (const url of [
      "http://172.32.0.1/",
      "http://8.8.8.8/",
      "http://[2606:4700::1111]/",
      "https://example.com./",
    ]) {
      expect(refuseTarget(url, false), url).toBeUndefined();
    }
  });

  it("allow private addresses outside production by default, and as configured", () => {
    const DATABASE_URL = "postgres://u@db.example.com/x";
    const allows = (env: Record<string, unknown>) => {
      const result = readWorkerConfig({ DATABASE_URL, ...env });
      if (!result.ok) throw result.error;
      return result.config.subscriptions.allowPrivateTargets;
    };
    expect(allows({})).toBe(true);
    // Production also needs its Rate Limiting binding.
    const production = {
      ENVIRONMENT: "production",
      REQUEST_RATE_LIMIT: { limit: async () => ({ success: true }) },
    };
    expect(allows(production)).toBe(false);
    expect(allows({ ...production, SUBSCRIPTION_PRIVATE_TARGETS: "allow" })).toBe(true);
    expect(allows({ SUBSCRIPTION_PRIVATE_TARGETS: "refuse" })).toBe(false);
    const refused = readWorkerConfig({ DATABASE_URL, SUBSCRIPTION_PRIVATE_TARGETS: "maybe" });
    expect(refused.ok).toBe(false);
    const result = readWorkerConfig({ DATABASE_URL });
    expect(result.ok && result.config.subscriptions).toEqual({
      deadLetterAfterMs: 86_400_000,
      timeoutMs: 10_000,
      allowPrivateTargets: true,
    });
  });
});

describe("retries", () => {
  it("back off exponentially with jitter, up to a cap, never below Retry-After", () => {
    expect(retryDelay(1, undefined, () => 0)).toBe(500);
    expect(retryDelay(1, undefined, () => 1)).toBe(1000);
    expect(retryDelay(3, undefined, () => 1)).toBe(4000);
    expect(retryDelay(40, undefined, () => 1)).toBe(RETRY_MAX_MS);
    expect(retryDelay(40, undefined, () => 0)).toBe(RETRY_MAX_MS / 2);
    expect(retryDelay(1, 30_000, () => 0.5)).toBe(30_000);
  });

  it("read Retry-After as seconds or an HTTP date", () => {
    const now = Date.parse("2026-03-01T10:00:00Z");
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("Sun, 01 Mar 2026 10:01:00 GMT", now)).toBe(60_000);
    expect(parseRetryAfter("Sun, 01 Mar 2026 09:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("99999999", now)).toBe(24 * 60 * 60 * 1000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
  });
});

describe("webhook-id", () => {
  const event = (id: string) => ({ event_id: id }) as FeedEvent;
  it("is the event's id for one event, and a hash of the ids for a batch, the same every time", async () => {
    const a = "8f14e45f-ceea-467f-a0e6-1c1d5e1b2a3c";
    const b = "0b8f1d2e-3c4a-4b5c-8d6e-7f8091a2b3c4";
    expect(await webhookIdOf([event(a)])).toBe(a);
    const batch = await webhookIdOf([event(a), event(b)]);
    expect(batch).toMatch(/^batch_[0-9a-f]{32}$/);
    expect(await webhookIdOf([event(a), event(b)])).toBe(batch);
    expect(await webhookIdOf([event(b), event(a)])).not.toBe(batch);
  });
});
