import { describe, expect, it } from "vitest";
import { type AccessTokenEntry, sha256Hex } from "../../src/auth/access-tokens";
import { authenticate } from "../../src/auth/authenticate";

// authenticate() remembers the tokens it matched, per configured list, so a client's next
// request skips the hash. What the memory must never do: accept a token the current list
// does not hold, or remember a token that did not match.

const headers = (token: string) => new Headers({ authorization: `Bearer ${token}` });
const newToken = () => `gst_${crypto.randomUUID().replaceAll("-", "")}`;

async function entry(
  id: string,
  token: string,
  scopes: AccessTokenEntry["scopes"],
): Promise<AccessTokenEntry> {
  return { id, sha256: await sha256Hex(token), scopes };
}

describe("authenticate's memory of matched tokens", () => {
  it("answers a remembered token with the same principal, and a new list does not inherit it", async () => {
    const token = newToken();
    const before = [await entry("ci", token, ["read"])];
    const first = await authenticate(headers(token), before);
    const again = await authenticate(headers(token), before);
    expect(first).toEqual({ ok: true, principal: expect.objectContaining({ tokenId: "ci" }) });
    expect(again).toEqual(first);

    // AUTH_TOKENS changed: the token is gone, or has other scopes.
    const without = [await entry("other", newToken(), ["admin"])];
    expect(await authenticate(headers(token), without)).toEqual({ ok: false, reason: "unknown" });
    const widened = [await entry("ci", token, ["admin"])];
    const now = await authenticate(headers(token), widened);
    expect(now.ok && [...now.principal.scopes]).toEqual(["admin"]);
  });

  it("never remembers an unknown token: it stays refused once the list that held none is asked again", async () => {
    const entries = [await entry("ci", newToken(), ["read"])];
    const stranger = newToken();
    for (let i = 0; i < 3; i++)
      expect(await authenticate(headers(stranger), entries)).toEqual({ ok: false, reason: "unknown" });
  });

  it("keeps telling tokens apart after many have been remembered (oldest forgotten, none confused)", async () => {
    const tokens = Array.from({ length: 1_100 }, newToken);
    const entries = await Promise.all(tokens.map((token, i) => entry(`t${i}`, token, ["read"])));
    for (const [i, token] of tokens.entries()) {
      const result = await authenticate(headers(token), entries);
      expect(result.ok && result.principal.tokenId).toBe(`t${i}`);
    }
    // The first ones were forgotten (bounded memory) and are matched again by their hash.
    const first = await authenticate(headers(tokens[0] ?? ""), entries);
    expect(first.ok && first.principal.tokenId).toBe("t0");
  });
});
