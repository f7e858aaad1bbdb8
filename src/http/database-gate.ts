// A bound on the database work one isolate does for requests that no stream actor
// serializes (listing streams): at most `limit` at once, at most `queue` more waiting
// their turn, and anything beyond is refused at once, so a burst of requests costs the
// database a fixed number of sessions instead of one each.

/** Gives the slot back; call it once, when the work and its database session are over. */
export type Release = () => void;

export class DatabaseGate {
  private running = 0;
  private readonly waiting: Array<(release: Release) => void> = [];

  constructor(
    readonly limit: number,
    readonly queue: number,
  ) {}

  /**
   * A slot, once one is free within `waitMs`; "busy" when the queue is full or the wait
   * ran out (refuse the request then: nothing has been done).
   */
  acquire(waitMs: number): Promise<Release | "busy"> {
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queue) return Promise.resolve("busy");
    return new Promise((resolve) => {
      const take = (release: Release) => {
        clearTimeout(timer);
        resolve(release);
      };
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(take);
        if (index >= 0) this.waiting.splice(index, 1);
        resolve("busy");
      }, waitMs);
      this.waiting.push(take);
    });
  }

  /** Requests holding a slot, and waiting for one. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `running` stays as it is.
      if (next) next(this.releaser());
      else this.running--;
    };
  }
}
