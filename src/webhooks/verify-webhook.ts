import { decodeBase64 } from "./webhook-secrets";
import { webhookSignature } from "./webhook-signature";

// Standard Webhooks (https://www.standardwebhooks.com) verification, on the raw body
// bytes, with WebCrypto only:
//   webhook-id         the message id, the same on every delivery attempt of one message
//   webhook-timestamp  Unix seconds of this attempt; refused beyond TOLERANCE_SECONDS either way
//   webhook-signature  space-separated "v1,<base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`>";
//                      one matching entry is enough, entries of other versions are ignored.

/** How far webhook-timestamp may be from the server's clock, in either direction. */
export const TOLERANCE_SECONDS = 5 * 60;

/** The headers of a delivery, read but not yet verified. */
export interface DeliveryHeaders {
  id: string;
  timestamp: number;
  signature: string;
}

/** Why a delivery cannot be verified: a sentence the sender can act on. */
export interface Unverified {
  ok: false;
  code:
    | "missing_webhook_header"
    | "invalid_webhook_header"
    | "stale_webhook_timestamp"
    | "invalid_webhook_signature";
  detail: string;
}

const ID_PATTERN = /^[\x21-\x7e]{1,256}$/;
const TIMESTAMP_PATTERN = /^\d{1,15}$/;

/** Reads and checks webhook-id and webhook-timestamp (against `nowMs`); webhook-signature is checked later. */
export function readDeliveryHeaders(
  header: (name: string) => string | undefined,
  nowMs: number,
): { ok: true; delivery: DeliveryHeaders } | Unverified {
  const id = header("webhook-id");
  const timestamp = header("webhook-timestamp");
  const signature = header("webhook-signature");
  const missing = [
    id === undefined ? "webhook-id" : undefined,
    timestamp === undefined ? "webhook-timestamp" : undefined,
    signature === undefined ? "webhook-signature" : undefined,
  ].filter((name) => name !== undefined);
  if (id === undefined || timestamp === undefined || signature === undefined) {
    return {
      ok: false,
      code: "missing_webhook_header",
      detail: `The header${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} missing; sign the delivery as Standard Webhooks describes (webhook-id, webhook-timestamp, webhook-signature).`,
    };
  }
  if (!ID_PATTERN.test(id)) {
    return {
      ok: false,
      code: "invalid_webhook_header",
      detail:
        "webhook-id must be 1 to 256 visible ASCII characters (no spaces), such as msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.",
    };
  }
  if (!TIMESTAMP_PATTERN.test(timestamp)) {
    return {
      ok: false,
      code: "invalid_webhook_header",
      detail: `webhook-timestamp must be the current time in whole Unix seconds, such as ${Math.floor(nowMs / 1000)}.`,
    };
  }
  const seconds = Number(timestamp);
  const drift = seconds - Math.floor(nowMs / 1000);
  if (Math.abs(drift) > TOLERANCE_SECONDS) {
    return {
      ok: false,
      code: "stale_webhook_timestamp",
      detail:
        `webhook-timestamp ${seconds} is ${Math.abs(drift)} seconds in the ${drift < 0 ? "past" : "future"}; ` +
        `it must be within ${TOLERANCE_SECONDS} seconds of the server's clock (now ${Math.floor(nowMs / 1000)}). ` +
        "Sign each attempt with the current time and check the sender's clock.",
    };
  }
  return { ok: true, delivery: { id, timestamp: seconds, signature } };
}

/** The v1 entries of a webhook-signature header, decoded; undefined for an entry that is not base64. */
function v1Signatures(header: string): (Uint8Array | undefined)[] {
  return header
    .split(" ")
    .filter((entry) => entry.startsWith("v1,"))
    .map((entry) => decodeBase64(entry.slice("v1,".length)));
}

/**
 * Checks webhook-signature against every key of the source: one v1 entry made with
 * any one key is enough. Digests are compared in constant time.
 */
export async function verifySignature(
  delivery: DeliveryHeaders,
  body: Uint8Array,
  keys: readonly Uint8Array[],
): Promise<{ ok: true } | Unverified> {
  const given = v1Signatures(delivery.signature);
  if (given.length === 0) {
    return {
      ok: false,
      code: "invalid_webhook_signature",
      detail:
        "webhook-signature has no v1 entry; send space-separated entries such as v1,<base64 HMAC-SHA256 " +
        "of `<webhook-id>.<webhook-timestamp>.<body>`>.",
    };
  }
  let matched = false;
  for (const key of keys) {
    const expected = await webhookSignature(key, delivery.id, delivery.timestamp, body);
    for (const signature of given) {
      // The length of an HMAC-SHA256 digest is public; only its bytes must be compared in constant time.
      if (signature !== undefined && signature.length === expected.length) {
        matched = crypto.subtle.timingSafeEqual(signature, expected) || matched;
      }
    }
  }
  if (matched) return { ok: true };
  return {
    ok: false,
    code: "invalid_webhook_signature",
    detail:
      "No v1 entry of webhook-signature matches: sign `<webhook-id>.<webhook-timestamp>.<body>` with " +
      "HMAC-SHA256, keyed with the base64-decoded part of this source's whsec_ secret, over the exact " +
      "bytes sent as the body, and send v1,<base64 digest>.",
  };
}
