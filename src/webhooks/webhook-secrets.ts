import { z } from "zod";
import { StreamLimitFields, type StreamScope, streamScopeOf } from "../auth/stream-scope";
import { encodeBase64 } from "./webhook-signature";

// WEBHOOK_SECRETS: which sources may push webhooks, the secrets their signatures are
// checked with, and which streams their deliveries may reach, as JSON:
// { "<source>": ["whsec_<base64 key>", ...] } or { "<source>": { "secrets": [...],
// "streams": [...], "stream_types": [...] } }. A list per source so a secret can rotate:
// add the new one, move the sender over, drop the old one.

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

/** The HMAC key of a `whsec_<base64>` secret; undefined when the text is not one. */
export function webhookKey(secret: string): Uint8Array | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const key = decodeBase64(secret.slice(SECRET_PREFIX.length));
  return key === undefined || key.length === 0 ? undefined : key;
}

/** A new secret: `whsec_` and 32 random bytes in base64 (a subscription's, shown once). */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${encodeBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

// Messages never quote the secret itself: they end up in logs.
const Secret = z.string({ error: "expected a string such as whsec_<base64 key>" }).transform((value, ctx) => {
  const key = webhookKey(value);
  if (key === undefined) {
    ctx.addIssue({ code: "custom", message: "expected whsec_ followed by a non-empty base64 key" });
    return z.NEVER;
  }
  return key;
});

const SecretList = z
  .array(Secret, { error: 'expected a list of secrets, such as ["whsec_..."]' })
  .min(1, { error: "list at least one secret (or remove the source)" });

const LimitedSource = z
  .object(
    { secrets: SecretList, ...StreamLimitFields },
    {
      error:
        'expected a list of secrets, such as ["whsec_..."], or {"secrets": [...], "streams": [<uuid>, ...], "stream_types": [...]}',
    },
  )
  .strict();

/** What a source may do: its secrets, and the streams its deliveries may reach (as for a token). */
export interface WebhookSource {
  keys: readonly Uint8Array[];
  scope: StreamScope;
}

/** One source: a list of secrets (any stream), or an object with its secrets and stream limits. */
const SourceEntry = z.unknown().transform((raw, ctx): WebhookSource => {
  const parsed = Array.isArray(raw) ? SecretList.safeParse(raw) : LimitedSource.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    return z.NEVER;
  }
  const entry = parsed.data;
  return Array.isArray(entry)
    ? { keys: entry, scope: streamScopeOf({}) }
    : { keys: entry.secrets, scope: streamScopeOf(entry) };
});

/**
 * Every configured source by name (WEBHOOK_SECRETS, read with the rest of the
 * configuration): `{"<source>": ["whsec_..."]}`, or, to limit what a source's deliveries
 * may reach exactly as a token's entry does, `{"<source>": {"secrets": [...], "streams":
 * [...], "stream_types": [...]}}`.
 */
export const WebhookSecrets = z
  .record(
    z.string().regex(WEBHOOK_SOURCE_PATTERN, { error: "source names are 1 to 64 of a-z, 0-9, '_' or '-'" }),
    SourceEntry,
    { error: 'expected a JSON object such as {"<source>": ["whsec_<base64 key>"]}' },
  )
  .transform((sources): ReadonlyMap<string, WebhookSource> => new Map(Object.entries(sources)));
export type WebhookSecrets = z.output<typeof WebhookSecrets>;
