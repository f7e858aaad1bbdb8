import type { AccessTokenEntry, Scope } from "./access-tokens";
import { type StreamScope, streamScopeOf } from "./stream-scope";

/** Who is calling, as far as the token says: its name, its scopes, and the streams it reaches. */
export interface Principal extends StreamScope {
  tokenId: string;
  scopes: ReadonlySet<Scope>;
}

export function principalOf(entry: AccessTokenEntry): Principal {
  return { tokenId: entry.id, scopes: new Set(entry.scopes), ...streamScopeOf(entry) };
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has("admin") || principal.scopes.has(scope);
}
