// Signing a webhook as Standard Webhooks (https://www.standardwebhooks.com) describes,
// with WebCrypto only, so it runs unchanged in Node 20+, Deno, Bun, browsers and Workers.
//
//   signed content  = `${webhookId}.${timestamp}.${body}`   (body: the exact text sent)
//   key             = base64-decode(secret without its "whsec_" prefix)
//   webhook-signature = "v1," + base64(HMAC-SHA256(key, signed content))

/** The three headers of a signed delivery. */
export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** Base64 of bytes (btoa takes a "binary string": one character per byte). */
function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** The bytes of a `whsec_<base64>` secret. */
function secretKey(secret: string): Uint8Array {
  const base64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

/** One signature entry: `v1,<base64 HMAC-SHA256 of "${webhookId}.${timestamp}.${body}">`. */
export async function signWebhook(
  secret: string,
  webhookId: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    secretKey(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const content = new TextEncoder().encode(`${webhookId}.${timestamp}.${body}`);
  const digest = await crypto.subtle.sign("HMAC", key, content);
  return `v1,${toBase64(new Uint8Array(digest))}`;
}

/** The headers for sending `body` (the exact text of the request body), signed with `secret`, now. */
export async function webhookHeaders(
  secret: string,
  webhookId: string,
  body: string,
  timestamp: number = Math.floor(Date.now() / 1000),
): Promise<WebhookHeaders> {
  return {
    "webhook-id": webhookId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signWebhook(secret, webhookId, timestamp, body),
  };
}
