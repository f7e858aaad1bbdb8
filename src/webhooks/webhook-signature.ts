// The Standard Webhooks signature (https://www.standardwebhooks.com), made with WebCrypto
// only: what verify-webhook.ts checks on deliveries that arrive, what subscriptions sign
// their deliveries with, and what the tests sign with.
//   signed content     `${webhook-id}.${webhook-timestamp}.` followed by the body's exact bytes
//   key                the base64-decoded part of a `whsec_` secret after the prefix (webhookKey)
//   webhook-signature  "v1," + base64(HMAC-SHA256(key, signed content))

/** Standard base64 of bytes (btoa takes a "binary string": one character per byte). */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** HMAC-SHA256 of `${id}.${timestamp}.` followed by the raw body bytes. */
export async function webhookSignature(
  key: Uint8Array,
  id: string,
  timestamp: number,
  body: Uint8Array,
): Promise<Uint8Array> {
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.length + body.length);
  content.set(prefix, 0);
  content.set(body, prefix.length);
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, content));
}

/** The three headers of a delivery of `body` (its exact bytes) signed with `key` at `timestamp` (Unix seconds). */
export async function signedWebhookHeaders(
  key: Uint8Array,
  id: string,
  timestamp: number,
  body: Uint8Array,
): Promise<{ "webhook-id": string; "webhook-timestamp": string; "webhook-signature": string }> {
  const signature = encodeBase64(await webhookSignature(key, id, timestamp, body));
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}` };
}
