/**
 * The event id of the event at `index` of a webhook delivery: the first 16 bytes of
 * SHA-256(`${source}\n${webhookId}\n${index}`) as an RFC 9562 version 8 UUID. Every
 * delivery attempt of one message carries the same webhook-id, so a redelivery names
 * the same event ids and the stream actor answers it as the first one, writing nothing.
 */
export async function webhookEventId(source: string, webhookId: string, index: number): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${source}\n${webhookId}\n${index}`),
  );
  const bytes = new Uint8Array(digest, 0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80; // version 8: custom
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // variant 10: RFC 9562
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
