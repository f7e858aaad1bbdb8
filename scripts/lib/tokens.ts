import { createHash, randomBytes } from "node:crypto";
import { AccessTokenEntry } from "../../src/auth/access-tokens";
import { describeIssues } from "../../src/events/wire";

// A new access token and the AUTH_TOKENS entry that admits it (`npm run token`, `glyph token`).

export interface TokenRequest {
  id?: string | undefined;
  /** Comma-separated scopes (default "read"). */
  scopes?: string | undefined;
  /** Comma-separated stream ids the token is limited to. */
  streams?: string | undefined;
  /** Comma-separated stream types the token is limited to. */
  streamTypes?: string | undefined;
}

const list = (text: string | undefined) =>
  text
    ?.split(",")
    .map((item) => item.trim())
    .filter(Boolean);

/** The token (shown once) and its entry, or why it cannot be made. */
export function makeToken(
  request: TokenRequest,
): { ok: true; token: string; entry: AccessTokenEntry } | { ok: false; error: string } {
  const token = `gst_${randomBytes(32).toString("base64url")}`;
  const entry = AccessTokenEntry.safeParse({
    id: request.id ?? `token-${Date.now()}`,
    sha256: createHash("sha256").update(token).digest("hex"),
    scopes: list(request.scopes ?? "read"),
    ...(request.streams ? { streams: list(request.streams) } : {}),
    ...(request.streamTypes ? { stream_types: list(request.streamTypes) } : {}),
  });
  if (!entry.success) return { ok: false, error: `Cannot make that token: ${describeIssues(entry.error)}` };
  return { ok: true, token, entry: entry.data };
}
