import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FEED_NOTIFY_INTERVAL_MS, FeedNotifier } from "../../src/feed/feed-notifier";

// The stream actor's wake-ups of the feed actor: coalesced to one call per interval,
// none while nobody follows the feed, and never a commit left without a call after it
// while someone does.

const QUIET_MS = 1_000;

describe("FeedNotifier", () => {
  let calls: number;
  let followed: boolean;
  let notifier: FeedNotifier;

  beforeEach(() => {
    vi.useFakeTimers();
    calls = 0;
    followed = true;
    notifier = new FeedNotifier(async () => {
      calls++;
      return followed;
    }, QUIET_MS);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("calls at once after the first commit", () => {
    notifier.committed();
    expect(calls).toBe(1);
  });

  it("covers a run of commits inside the interval with one call at its end", async () => {
    notifier.committed();
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(1);
      notifier.committed();
    }
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(FEED_NOTIFY_INTERVAL_MS);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(10 * FEED_NOTIFY_INTERVAL_MS);
    expect(calls).toBe(2); // nothing committed since: no call
  });

  it("calls again after a commit that comes once the interval has passed", async () => {
    notifier.committed();
    await vi.advanceTimersByTimeAsync(FEED_NOTIFY_INTERVAL_MS + 1);
    notifier.committed();
    expect(calls).toBe(2);
  });

  it("stays silent for the quiet time after the feed actor said nobody follows, then asks again", async () => {
    followed = false;
    notifier.committed();
    await vi.advanceTimersByTimeAsync(FEED_NOTIFY_INTERVAL_MS + 1);
    notifier.committed();
    await vi.advanceTimersByTimeAsync(QUIET_MS / 2);
    notifier.committed();
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(QUIET_MS);
    followed = true;
    notifier.committed();
    expect(calls).toBe(2);
  });

  it("a failed call only delays: the next commit calls again", async () => {
    let fail = true;
    const failing = new FeedNotifier(async () => {
      calls++;
      if (fail) throw new Error("feed actor unreachable");
      return true;
    }, QUIET_MS);
    failing.committed();
    await vi.advanceTimersByTimeAsync(FEED_NOTIFY_INTERVAL_MS + 1);
    fail = false;
    failing.committed();
    expect(calls).toBe(2);
  });
});
