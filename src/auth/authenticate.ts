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

// Tokens this isolate has already matched, so a client's next request skips the hash and
// the comparisons (measured in docs/cpu-profile.md: the hash was the largest single cost of
// a request that never reaches an actor). Only tokens that matched are kept, so an unknown
// token can neither fill the memory nor be answered from it; the memory belongs to one
// configured list, so a new AUTH_TOKENS starts empty; and it is bounded, oldest out first.
const MAX_REMEMBERED_TOKENS = 1_024;
const remembered = new WeakMap<readonly AccessTokenEntry[], Map<string, Principal>>();

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
  let known = remembered.get(entries);
  const principal = known?.get(token);
  if (principal !== undefined) return { ok: true, principal };
  const encoder = new TextEncoder();
  const hash = encoder.encode(await sha256Hex(token));
  let match: AccessTokenEntry | undefined;
  for (const entry of entries) {
    if (crypto.subtle.timingSafeEqual(hash, encoder.encode(entry.sha256)) && match === undefined)
      match = entry;
  }
  if (match === undefined) return { ok: false, reason: "unknown" };
  const matched = principalOf(match);
  if (known === undefined) {
    known = new Map();
    remembered.set(entries, known);
  }
  if (known.size >= MAX_REMEMBERED_TOKENS) known.delete(known.keys().next().value ?? "");
  known.set(token, matched);
  return { ok: true, principal: matched };
}
