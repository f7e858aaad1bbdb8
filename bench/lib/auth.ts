import { createHash, createHmac, randomBytes } from "node:crypto";

// Credentials made for one benchmark run: an admin bearer token (the Worker only gets
// its SHA-256, as in production) and a webhook secret for the source "bench".

const TOKEN = `gst_bench_${randomBytes(24).toString("base64url")}`;

/** AUTH_TOKENS for the benchmark Worker. */
export function benchAuthTokens(): string {
  const sha256 = createHash("sha256").update(TOKEN).digest("hex");
  return JSON.stringify([{ id: "bench", sha256, scopes: ["admin"] }]);
}

export const benchAuthorization = { authorization: `Bearer ${TOKEN}` } as const;

/** A fresh `whsec_` secret (32 random bytes). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/**
 * The Standard Webhooks signature header value for `body`, as
 * test/support/webhook-signing.ts makes it (node:crypto here: cheaper for the load generator).
 */
export function signWebhook(secret: string, webhookId: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const digest = createHmac("sha256", key).update(`${webhookId}.${timestamp}.${body}`).digest("base64");
  return `v1,${digest}`;
}
