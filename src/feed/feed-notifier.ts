/**
 * The shortest time between two wake-ups of the feed actor from one stream actor. A
 * wake-up is a Durable Object call, the largest single cost of an append once the
 * database has answered (docs/cpu-profile.md); the feed's watchers wait this much longer
 * at most.
 */
export const FEED_NOTIFY_INTERVAL_MS = 20;

/**
 * Tells the feed actor that commits happened, without waiting, and without a call per
 * commit:
 * - at most one call per FEED_NOTIFY_INTERVAL_MS: a commit inside the interval is covered
 *   by one call at its end (a wake-up makes the feed actor read everything new, so one
 *   call after a run of commits covers all of them);
 * - none for FEED_POLL_INTERVAL_MS after the feed actor answered that nobody follows the
 *   feed. Whoever starts following in that time is served by the polls that already back
 *   every wake-up up: the feed actor's alarm and each subscription's own, both on that
 *   interval. So the cost of a feed nobody reads is one call per second per busy stream.
 * A failed call costs nothing but that delay.
 */
export class FeedNotifier {
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private quietUntil = Number.NEGATIVE_INFINITY;
  private due: ReturnType<typeof setTimeout> | undefined;

  /**
   * `call` wakes the feed actor and answers whether anyone follows the feed; `quietMs`
   * is how long to stay silent after it said no one does.
   */
  constructor(
    private readonly call: () => Promise<boolean>,
    private readonly quietMs: number,
    private readonly intervalMs: number = FEED_NOTIFY_INTERVAL_MS,
  ) {}

  /** After each commit. */
  committed(): void {
    if (this.due !== undefined) return; // a call is already due, after this commit
    const now = Date.now();
    if (now < this.quietUntil) return;
    const wait = this.lastSentAt + this.intervalMs - now;
    if (wait <= 0) {
      this.send();
      return;
    }
    this.due = setTimeout(() => {
      this.due = undefined;
      this.send();
    }, wait);
  }

  private send(): void {
    this.lastSentAt = Date.now();
    this.call().then(
      (followed) => {
        if (!followed) this.quietUntil = Date.now() + this.quietMs;
      },
      () => undefined,
    );
  }
}
