import { z } from "zod";

// WEBHOOK_SECRETS: which sources may push webhooks and the secrets their signatures
// are checked with, as JSON: { "<source>": ["whsec_<base64 key>", ...] }. A list per
// source so a secret can rotate: add the new one, move the sender over, drop the old one.

/** A webhook source name, as it appears in POST /webhooks/:source. */
export const WEBHOOK_SOURCE_PATTERN = /^[a-z0-9_-]{1,64}$/;

const SECRET_PREFIX = "whsec_";

/** Decodes standard base64 (padding optional); undefined when it is not base64. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return undefined;
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

// Messages never quote the secret itself: they end up in logs.
const Secret = z.string({ error: "expected a string such as whsec_<base64 key>" }).transform((value, ctx) => {
  const key = value.startsWith(SECRET_PREFIX) ? decodeBase64(value.slice(SECRET_PREFIX.length)) : undefined;
  if (key === undefined || key.length === 0) {
    ctx.addIssue({ code: "custom", message: "expected whsec_ followed by a non-empty base64 key" });
    return z.NEVER;
  }
  return key;
});

/** The HMAC keys of every configured source, by source name (WEBHOOK_SECRETS, read with the rest of the configuration). */
export const WebhookSecrets = z
  .record(
    z.string().regex(WEBHOOK_SOURCE_PATTERN, { error: "source names are 1 to 64 of a-z, 0-9, '_' or '-'" }),
    z
      .array(Secret, { error: 'expected a list of secrets, such as ["whsec_..."]' })
      .min(1, { error: "list at least one secret (or remove the source)" }),
    { error: 'expected a JSON object such as {"<source>": ["whsec_<base64 key>"]}' },
  )
  .transform((sources): ReadonlyMap<string, readonly Uint8Array[]> => new Map(Object.entries(sources)));
export type WebhookSecrets = z.output<typeof WebhookSecrets>;
