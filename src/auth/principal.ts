import type { AccessTokenEntry, Scope } from "./access-tokens";

/** Who is calling, as far as the token says. */
export interface Principal {
  tokenId: string;
  scopes: ReadonlySet<Scope>;
  streams: ReadonlySet<string> | undefined;
  streamTypes: readonly string[] | undefined;
}

export function principalOf(entry: AccessTokenEntry): Principal {
  return {
    tokenId: entry.id,
    scopes: new Set(entry.scopes),
    streams: entry.streams === undefined ? undefined : new Set(entry.streams),
    streamTypes: entry.stream_types,
  };
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has("admin") || principal.scopes.has(scope);
}
