import { type AccessTokenEntry, sha256Hex } from "./access-tokens";
import { type Principal, principalOf } from "./principal";

/** The subprotocol prefix that carries a token from a browser's WebSocket. */
export const BEARER_PROTOCOL_PREFIX = "bearer.";

export type Authentication =
  | { ok: true; principal: Principal }
  | { ok: false; reason: "missing" | "malformed" | "unknown" };

/**
 * The token from `Authorization: Bearer …`, or, on a WebSocket upgrade only, from a
 * `bearer.…` subprotocol (a browser's WebSocket cannot set headers; nothing else needs it).
 */
export function presentedToken(headers: Headers): string | undefined | null {
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(authorization.trim());
    return match?.[1] ?? null;
  }
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") return undefined;
  const protocols = (headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const carried = protocols.find((protocol) => protocol.startsWith(BEARER_PROTOCOL_PREFIX));
  if (carried === undefined) return undefined;
  const token = carried.slice(BEARER_PROTOCOL_PREFIX.length);
  return /^[A-Za-z0-9._~-]{16,512}$/.test(token) ? token : null;
}

/**
 * Finds the token among the configured hashes. Every entry is compared, each in
 * constant time, so timing tells nothing about which (if any) matched. Both sides
 * are 64 hex digits (AccessTokenEntry checks the configured ones), as timingSafeEqual
 * requires inputs of one length.
 */
export async function authenticate(
  headers: Headers,
  entries: readonly AccessTokenEntry[],
): Promise<Authentication> {
  const token = presentedToken(headers);
  if (token === undefined) return { ok: false, reason: "missing" };
  if (token === null) return { ok: false, reason: "malformed" };
  const encoder = new TextEncoder();
  const hash = encoder.encode(await sha256Hex(token));
  let match: AccessTokenEntry | undefined;
  for (const entry of entries) {
    if (crypto.subtle.timingSafeEqual(hash, encoder.encode(entry.sha256)) && match === undefined)
      match = entry;
  }
  return match === undefined ? { ok: false, reason: "unknown" } : { ok: true, principal: principalOf(match) };
}
