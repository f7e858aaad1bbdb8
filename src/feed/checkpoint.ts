import { z } from "zod";

// A place in the global feed: the writing transaction's id (xid8) and the event's
// global_position, the pair the feed is ordered by. Clients see it as an opaque string
// (base64url of "<transaction>.<position>"), stable across restarts because both parts
// are stored with the event.

export interface FeedCheckpoint {
  /** pg_current_xact_id() of the transaction that wrote the event: an unsigned 64-bit number. */
  transactionId: bigint;
  globalPosition: number;
}

/** Before every event: the feed from its beginning. */
export const FEED_START: FeedCheckpoint = { transactionId: 0n, globalPosition: 0 };

const MAX_XID8 = 2n ** 64n - 1n;
const PAIR = /^(\d{1,20})\.(\d{1,16})$/;

export function encodeCheckpoint(checkpoint: FeedCheckpoint): string {
  const text = `${checkpoint.transactionId}.${checkpoint.globalPosition}`;
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The checkpoint a string spells, or undefined when it is not one this server made. */
export function decodeCheckpoint(text: string): FeedCheckpoint | undefined {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(text)) return undefined;
  let decoded: string;
  try {
    decoded = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return undefined;
  }
  const match = PAIR.exec(decoded);
  if (match === null) return undefined;
  const transactionId = BigInt(match[1] ?? "");
  const globalPosition = Number(match[2]);
  if (transactionId > MAX_XID8 || !Number.isSafeInteger(globalPosition)) return undefined;
  const checkpoint = { transactionId, globalPosition };
  // One spelling per checkpoint: no leading zeros, no padding.
  return encodeCheckpoint(checkpoint) === text ? checkpoint : undefined;
}

/** Negative when `a` is before `b` in the feed, 0 when equal, positive after. */
export function compareCheckpoints(a: FeedCheckpoint, b: FeedCheckpoint): number {
  if (a.transactionId !== b.transactionId) return a.transactionId < b.transactionId ? -1 : 1;
  return a.globalPosition - b.globalPosition;
}

/** A checkpoint as clients send it: the `checkpoint` of an event, or `next` of a page. */
export const Checkpoint = z.string({ error: "expected a checkpoint string" }).transform((text, ctx) => {
  const checkpoint = decodeCheckpoint(text);
  if (checkpoint === undefined) {
    ctx.addIssue({
      code: "custom",
      message:
        "is not a checkpoint: pass back exactly the `checkpoint` of an event or the `next` of a page (or leave it out to start at the beginning)",
    });
    return z.NEVER;
  }
  return checkpoint;
});
