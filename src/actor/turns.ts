// Turns: the order in which writers that lost a race on an exact expected version get
// to win one (ARCHITECTURE, decision 23). A 409 for an exact version hands the writer a
// turn, numbered by when it was first refused; a writer that sends its turn back with
// its retry has claimed it, and while a claimed turn is live no append holding a later
// turn, or none, may take the version it expects. So the writer refused first wins
// next, whoever's retry arrives first, and the last winner goes to the back.
//
// A refused append that is not first in line is held (in `held`) instead of answered:
// its 409 would only bring its retry back to be refused again, so it waits until the
// writers before it are done, and is then decided again (and answered 409 with the
// version it must retry at). Under contention each win then costs one refusal and one
// retry instead of a refusal for every waiting writer.
//
// A turn no one sends back (a client that does not know about turns) never holds anyone
// up; a claimed turn lapses once its writer has not been heard from for TURN_HOLD_MS,
// and one first in line that misses its version MAX_MISSES times in a row goes to the
// back, so a writer that gave up, or never retries at the version it is told, delays the
// others by that much at most. Turns live in the actor's memory: a restarted actor
// knows none and hands out new ones.

/** How long a claimed turn holds the others back without its writer sending it again. */
export const TURN_HOLD_MS = 1_000;
/** Refusals in a row of the writer first in line before its turn goes to the back. */
const MAX_MISSES = 3;
/** At most this many turns are remembered (the oldest forgotten first), and this many appends held. */
const MAX_TURNS = 4_096;
const MAX_HELD = 1_024;

interface Turn {
  lastSeen: number;
  claimed: boolean;
  misses: number;
}

export class Turns<Held> {
  /** By number; a Map keeps insertion order, which is the order the turns were handed out. */
  private readonly turns = new Map<number, Turn>();
  private held: Array<{ item: Held; turn: string }> = [];
  private next = 1;
  /** Names this actor's turns apart from an earlier instance's, whose numbers started at 1 too. */
  private readonly epoch = crypto.randomUUID().slice(0, 8);

  constructor(private readonly now: () => number = Date.now) {}

  /** A writer sent `token` with an append: its turn, if this actor handed it out, is claimed and live. */
  present(token: string | undefined): void {
    const turn = this.find(token);
    if (turn === undefined) return;
    turn.claimed = true;
    turn.lastSeen = this.now();
  }

  /** Whether the append holding `token` (or none) may take the version it expects: no earlier claimed turn is live. */
  mayWin(token: string | undefined): boolean {
    const own = this.number(token);
    const now = this.now();
    for (const [number, turn] of this.turns) {
      if (own !== undefined && number >= own) return true;
      if (now - turn.lastSeen > TURN_HOLD_MS) {
        this.turns.delete(number);
        continue;
      }
      if (turn.claimed) return false;
    }
    return true;
  }

  /**
   * An append holding `token` (or none) was refused a version: the turn to answer it
   * with (the one it holds, or a new one at the back), and whether to hold it instead of
   * answering now (writers before it are still waiting, and there is room).
   */
  refused(token: string | undefined): { turn: string; hold: boolean } {
    const number = this.number(token);
    const turn = number === undefined ? undefined : this.turns.get(number);
    if (number !== undefined && turn !== undefined && token !== undefined) {
      turn.lastSeen = this.now();
      if (!this.mayWin(token)) return { turn: token, hold: this.held.length < MAX_HELD };
      if (++turn.misses <= MAX_MISSES) return { turn: token, hold: false };
      this.turns.delete(number);
    }
    const issued = this.issue();
    return { turn: issued, hold: !this.mayWin(issued) && this.held.length < MAX_HELD };
  }

  /** Keeps a refused append (refused said to) until the writers before it are done: release hands it back. */
  hold(item: Held, turn: string): void {
    this.present(turn);
    this.held.push({ item, turn });
  }

  /** The held appends that are now first in line, to be decided again; the others stay, their turns kept live. */
  release(): Held[] {
    const released: Held[] = [];
    const kept: Array<{ item: Held; turn: string }> = [];
    for (const entry of this.held) {
      if (this.mayWin(entry.turn)) released.push(entry.item);
      else kept.push(entry);
    }
    for (const entry of kept) this.present(entry.turn);
    this.held = kept;
    return released;
  }

  get holding(): number {
    return this.held.length;
  }

  /** The append holding `token` was answered otherwise than "retry at this version": its turn is over. */
  done(token: string | undefined): void {
    const number = this.number(token);
    if (number !== undefined) this.turns.delete(number);
  }

  private issue(): string {
    const number = this.next++;
    this.turns.set(number, { lastSeen: this.now(), claimed: false, misses: 0 });
    if (this.turns.size > MAX_TURNS) {
      const oldest = this.turns.keys().next().value;
      if (oldest !== undefined) this.turns.delete(oldest);
    }
    return `${this.epoch}-${number}`;
  }

  private find(token: string | undefined): Turn | undefined {
    const number = this.number(token);
    return number === undefined ? undefined : this.turns.get(number);
  }

  /** The number of one of this actor's turns; undefined for anything else (another instance's, made up). */
  private number(token: string | undefined): number | undefined {
    if (token === undefined) return undefined;
    const dash = token.indexOf("-");
    if (dash < 0 || token.slice(0, dash) !== this.epoch) return undefined;
    const number = Number(token.slice(dash + 1));
    return Number.isSafeInteger(number) && number > 0 && number < this.next ? number : undefined;
  }
}
