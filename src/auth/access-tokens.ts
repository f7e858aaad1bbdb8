import { z } from "zod";
import { StreamLimitFields } from "./stream-scope";

// Bearer tokens are configured by their SHA-256 hashes only (the AUTH_TOKENS secret
// holds no plaintext token). A token is 32 random bytes, so a plain hash is enough:
// there is nothing to brute-force that a slow hash would protect.

export const Scope = z.enum(["read", "append", "admin"]);
export type Scope = z.infer<typeof Scope>;

export const AccessTokenEntry = z.object({
  /** A name for logs and errors; never secret. */
  id: z.string().min(1).max(64),
  /** Lower-case hex SHA-256 of the token. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, { error: "sha256 must be 64 lower-case hex digits" }),
  scopes: z.array(Scope).min(1),
  /** `streams`, `stream_types`: when present, only these streams, only streams of these types. */
  ...StreamLimitFields,
});
export type AccessTokenEntry = z.infer<typeof AccessTokenEntry>;

/** AUTH_TOKENS: every token the server accepts (read with the rest of the configuration). */
export const AccessTokens = z.array(AccessTokenEntry, {
  error: "expected a JSON list of tokens (see README)",
});

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
