// Turns: the order in which writers that lost a race on an exact expected version get
// to win one (ARCHITECTURE, decision 23). A 409 for an exact version hands the writer a
// turn, numbered by when it was first refused. While a turn ahead in line is live, no
// append holding a later turn, or none, may take the version it expects. So the writer
// refused first wins next, whoever's retry arrives first, and the last winner goes to
// the back.
//
// A refused append that is not first in line is held (in `held`) instead of answered:
// its 409 would only bring its retry back to be refused again, so it waits until the
// turns before it are done or lapse, and is then decided again (and answered 409 with
// the version it must retry at). Under contention each win then costs one refusal and
// one retry instead of a refusal for every waiting writer.
//
// A turn is live while its append is held, and then for as long as its writer keeps
// sending it back: TURN_HOLD_MS after the writer last sent it or was last refused with
// it. A turn its writer has never sent back is live only while held and for
// TURN_GRACE_MS after it was answered as first in line, the time for its retry to come:
// so a client that does not know turns never holds anyone up for longer than that, and
// until some writer sends a turn back nobody is held at all. A writer first in line that
// misses its version MAX_MISSES times in a row goes to the back. A turn is a number and
// a random secret: it cannot be guessed or taken over by another writer. Turns live in
// the actor's memory: a restarted actor knows none and hands out new ones.

/** How long a turn its writer has sent back stays live without being sent again. */
export const TURN_HOLD_MS = 500;
/** How long a turn never sent back stays live after its append was answered first in line. */
export const TURN_GRACE_MS = 150;
/** Refusals in a row of the writer first in line before its turn goes to the back. */
const MAX_MISSES = 2;
/** At most this many turns are remembered (the oldest forgotten first), and this many appends held. */
const MAX_TURNS = 4_096;
const MAX_HELD = 1_024;

interface Turn {
  secret: string;
  /** When its writer last sent it, was refused with it, or was released. */
  lastSeen: number;
  sentBack: boolean;
  held: boolean;
  /** When its held append was released, for the grace of a turn never sent back. */
  releasedAt: number | undefined;
  misses: number;
}

export class Turns<Held> {
  /** By number; a Map keeps insertion order, which is the order the turns were handed out. */
  private readonly turns = new Map<number, Turn>();
  private held: Array<{ item: Held; turn: string }> = [];
  private next = 1;

  constructor(private readonly now: () => number = Date.now) {}

  /** A writer sent `token` with an append: its turn, if this actor handed it out, is live again. */
  present(token: string | undefined): void {
    const turn = this.find(token)?.turn;
    if (turn === undefined) return;
    turn.sentBack = true;
    turn.lastSeen = this.now();
  }

  /** Whether the append holding `token` (or none) may take the version it expects: no earlier turn is live. */
  mayWin(token: string | undefined): boolean {
    // A token that is not one of this actor's turns counts as none: it cannot jump the line.
    const own = this.find(token)?.number;
    const now = this.now();
    for (const [number, turn] of this.turns) {
      if (own !== undefined && number >= own) return true;
      if (!turn.held && now - turn.lastSeen > TURN_HOLD_MS) {
        this.turns.delete(number);
        continue;
      }
      if (this.live(turn, now)) return false;
    }
    return true;
  }

  /**
   * An append holding `token` (or none) was refused a version: the turn to answer it
   * with (the one it holds, or a new one at the back), and whether to hold it instead of
   * answering now (a turn before it is live, and there is room).
   */
  refused(token: string | undefined): { turn: string; hold: boolean } {
    const found = this.find(token);
    if (found !== undefined && token !== undefined) {
      found.turn.lastSeen = this.now();
      if (!this.mayWin(token)) return { turn: token, hold: this.held.length < MAX_HELD };
      if (++found.turn.misses <= MAX_MISSES) return { turn: token, hold: false };
      this.turns.delete(found.number);
    }
    const issued = this.issue();
    return { turn: issued, hold: !this.mayWin(issued) && this.held.length < MAX_HELD };
  }

  /** Keeps a refused append (refused said to) until the turns before it are done: release hands it back. */
  hold(item: Held, token: string): void {
    const turn = this.find(token)?.turn;
    if (turn !== undefined) turn.held = true;
    this.held.push({ item, turn: token });
  }

  /** The held appends that are now first in line, to be decided again; the others stay held. */
  release(): Held[] {
    const released: Held[] = [];
    const kept: Array<{ item: Held; turn: string }> = [];
    for (const entry of this.held) {
      if (!this.mayWin(entry.turn)) {
        kept.push(entry);
        continue;
      }
      const turn = this.find(entry.turn)?.turn;
      if (turn !== undefined) {
        turn.held = false;
        turn.releasedAt = this.now();
        turn.lastSeen = turn.releasedAt;
      }
      released.push(entry.item);
    }
    this.held = kept;
    return released;
  }

  get holding(): number {
    return this.held.length;
  }

  /** The append holding `token` was answered otherwise than "retry at this version": its turn is over. */
  done(token: string | undefined): void {
    const found = this.find(token);
    if (found !== undefined) this.turns.delete(found.number);
  }

  private live(turn: Turn, now: number): boolean {
    if (turn.held) return true;
    if (turn.sentBack) return now - turn.lastSeen <= TURN_HOLD_MS;
    return turn.releasedAt !== undefined && now - turn.releasedAt <= TURN_GRACE_MS;
  }

  private issue(): string {
    const number = this.next++;
    const secret = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    this.turns.set(number, {
      secret,
      lastSeen: this.now(),
      sentBack: false,
      held: false,
      releasedAt: undefined,
      misses: 0,
    });
    if (this.turns.size > MAX_TURNS) {
      const oldest = this.turns.keys().next().value;
      if (oldest !== undefined) this.turns.delete(oldest);
    }
    return `${number}.${secret}`;
  }

  /** The turn `token` ("number.secret") names, if this actor handed it out and the secret matches. */
  private find(token: string | undefined): { number: number; turn: Turn } | undefined {
    const dot = token?.indexOf(".") ?? -1;
    if (token === undefined || dot < 1) return undefined;
    const number = Number(token.slice(0, dot));
    const turn = this.turns.get(number);
    return turn !== undefined && token.slice(dot + 1) === turn.secret ? { number, turn } : undefined;
  }
}
