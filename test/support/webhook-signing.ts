import { webhookKey } from "../../src/webhooks/webhook-secrets";
import { encodeBase64, webhookSignature } from "../../src/webhooks/webhook-signature";

// Signing a webhook as Standard Webhooks (https://www.standardwebhooks.com) describes,
// with the Worker's own signer (src/webhooks/webhook-signature.ts, WebCrypto only):
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

/** The bytes of a `whsec_<base64>` secret. */
function secretKey(secret: string): Uint8Array {
  const key = webhookKey(secret);
  if (key === undefined) throw new Error("not a whsec_<base64> secret");
  return key;
}

/** One signature entry: `v1,<base64 HMAC-SHA256 of "${webhookId}.${timestamp}.${body}">`. */
export async function signWebhook(
  secret: string,
  webhookId: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const digest = await webhookSignature(
    secretKey(secret),
    webhookId,
    timestamp,
    new TextEncoder().encode(body),
  );
  return `v1,${encodeBase64(digest)}`;
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
