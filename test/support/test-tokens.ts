import { createHash } from "node:crypto";

// Access tokens for the test Worker. Only their hashes reach the Worker (AUTH_TOKENS),
// exactly as in production.

export const TEST_TOKENS = {
  admin: "test-admin-token-0123456789abcdef",
  reader: "test-reader-token-0123456789abcdef",
  appender: "test-appender-token-0123456789abcd",
  /** read + append, but only the stream LIMITED_STREAM_ID. */
  oneStream: "test-one-stream-token-0123456789ab",
  /** read + append, but only streams of type "invoice". */
  invoices: "test-invoices-token-0123456789abcd",
  /** read only, for the watcher caps of test/worker/security.test.ts (one token per test, so caps are its own). */
  streamWatcher: "test-stream-watcher-token-01234567",
  tokenWatcher: "test-token-watcher-token-012345678",
  /** read only, for the rate limit test: nothing else spends its requests. */
  burst: "test-burst-token-0123456789abcdef0",
} as const;

export const LIMITED_STREAM_ID = "5b7a1c2d-3e4f-4a5b-8c6d-7e8f90a1b2c3";

const sha256 = (token: string) => createHash("sha256").update(token).digest("hex");

/** The AUTH_TOKENS value for the test Worker. */
export function testAuthTokens(): string {
  return JSON.stringify([
    { id: "admin", sha256: sha256(TEST_TOKENS.admin), scopes: ["admin"] },
    { id: "reader", sha256: sha256(TEST_TOKENS.reader), scopes: ["read"] },
    { id: "appender", sha256: sha256(TEST_TOKENS.appender), scopes: ["append"] },
    {
      id: "one-stream",
      sha256: sha256(TEST_TOKENS.oneStream),
      scopes: ["read", "append"],
      streams: [LIMITED_STREAM_ID],
    },
    {
      id: "invoices",
      sha256: sha256(TEST_TOKENS.invoices),
      scopes: ["read", "append"],
      stream_types: ["invoice"],
    },
    { id: "stream-watcher", sha256: sha256(TEST_TOKENS.streamWatcher), scopes: ["read"] },
    { id: "token-watcher", sha256: sha256(TEST_TOKENS.tokenWatcher), scopes: ["read"] },
    { id: "burst", sha256: sha256(TEST_TOKENS.burst), scopes: ["read"] },
  ]);
}

export const adminAuthorization = { authorization: `Bearer ${TEST_TOKENS.admin}` };

/** The one stream the webhook source "one-stream" may append to. */
export const SOURCE_STREAM_ID = "c1b1f42f-9957-47c0-979e-356ece150eec";

/**
 * The webhook sources of the test Worker (WEBHOOK_SECRETS): "acme" with one secret and
 * "rotating" with two, for any stream; "orders" and "one-stream" limited as a token's
 * entry can be (issue 10, row 2).
 */
export const TEST_WEBHOOK_SOURCES = {
  acme: ["whsec_GhloRf6yH0XHh7sqXylmJNHPLW6HWWchO8k2NR2nZsM="],
  rotating: [
    "whsec_MyorDvj0PvHN+CGHTYEVKNtGCpTaWuVTplQrLk94lVc=",
    "whsec_YGM8EJ+pNMRsjhsTh7+SRtCaEMt6W/mw6TRr+VIx/5Q=",
  ],
  orders: { secrets: ["whsec_YwnQ/RsZt8+u74VDr0Yif0RiMYD0H8Tm6DEGHJGyuqc="], stream_types: ["order"] },
  "one-stream": {
    secrets: ["whsec_SJYGa/o0kG+p0mQy/X1m3kdtKTzFSa1rTzVIv7IzE5I="],
    streams: [SOURCE_STREAM_ID],
  },
} as const;

/** The worker tier's limits (vitest.config.ts), low enough for its tests to reach. */
export const WORKER_TIER_LIMITS = {
  watchersPerStream: 4,
  watchersPerToken: 6,
  bodyTimeoutMs: 1_500,
  requestsPer10Seconds: 100,
} as const;
