import { describe, expect, it } from "vitest";
import { TURN_GRACE_MS, TURN_HOLD_MS, Turns } from "../../src/actor/turns";

// The order of writers racing on exact expected versions (src/actor/turns.ts): first
// refused, first to win; a turn nobody sends back holds no one up for longer than the
// grace after its 409; a sent-back turn whose writer went quiet, or that keeps missing
// its version, stops holding the others; a turn cannot be made up or taken over.

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** A turn handed out and sent back once, as a retry does. */
function sentBack(turns: Turns<string>, token?: string): string {
  const { turn } = turns.refused(token);
  turns.present(turn);
  return turn;
}

describe("Turns", () => {
  it("hold no one while no turn has been sent back", () => {
    const turns = new Turns<string>();
    expect(turns.mayWin(undefined)).toBe(true);
    expect(turns.refused(undefined).hold).toBe(false);
    expect(turns.mayWin(undefined)).toBe(true);
    expect(turns.refused(undefined).hold).toBe(false);
  });

  it("serve sent-back turns in the order they were handed out, ahead of appends with none", () => {
    const turns = new Turns<string>();
    const a = sentBack(turns);
    const b = sentBack(turns);
    expect(turns.mayWin(undefined)).toBe(false);
    expect(turns.mayWin(b)).toBe(false);
    expect(turns.mayWin(a)).toBe(true);
    turns.done(a);
    expect(turns.mayWin(b)).toBe(true);
    expect(turns.mayWin(undefined)).toBe(false);
    turns.done(b);
    expect(turns.mayWin(undefined)).toBe(true);
  });

  it("hold a refused append behind a live turn, and release the first in line only", () => {
    const turns = new Turns<string>();
    const a = sentBack(turns);
    const b = turns.refused(undefined);
    const c = turns.refused(undefined);
    expect([b.hold, c.hold]).toEqual([true, true]);
    turns.hold("b's append", b.turn);
    turns.hold("c's append", c.turn);
    expect(turns.release()).toEqual([]);
    turns.done(a);
    // b goes first; c waits for b's retry.
    expect(turns.release()).toEqual(["b's append"]);
    expect(turns.holding).toBe(1);
    expect(turns.refused(b.turn)).toEqual({ turn: b.turn, hold: false });
    expect(turns.release()).toEqual([]);
  });

  it("let a turn that was held but never sent back go after TURN_GRACE_MS, not hold the others longer", () => {
    const time = clock();
    const turns = new Turns<string>(time.now);
    const a = sentBack(turns);
    const unaware = turns.refused(undefined);
    turns.hold("unaware", unaware.turn);
    const c = turns.refused(undefined);
    turns.hold("c", c.turn);
    turns.done(a);
    expect(turns.release()).toEqual(["unaware"]);
    // Answered 409 first in line; its writer never sends the turn back.
    expect(turns.refused(unaware.turn).hold).toBe(false);
    time.advance(TURN_GRACE_MS - 1);
    expect(turns.release()).toEqual([]);
    time.advance(2);
    expect(turns.release()).toEqual(["c"]);
  });

  it("stop holding the others back once a sent-back turn's writer is quiet for TURN_HOLD_MS", () => {
    const time = clock();
    const turns = new Turns<string>(time.now);
    const a = sentBack(turns);
    const b = turns.refused(undefined);
    turns.hold("b's append", b.turn);
    time.advance(TURN_HOLD_MS);
    expect(turns.release()).toEqual([]);
    time.advance(1);
    expect(turns.release()).toEqual(["b's append"]);
    // a lapsed: it has lost its place, and b's retry comes first.
    expect(turns.mayWin(a)).toBe(false);
    expect(turns.mayWin(b.turn)).toBe(true);
  });

  it("forget a turn never sent back after TURN_HOLD_MS, so turns cannot be stockpiled", () => {
    const time = clock();
    const turns = new Turns<string>(time.now);
    const kept = turns.refused(undefined).turn;
    time.advance(TURN_HOLD_MS + 1);
    const b = sentBack(turns);
    turns.present(kept);
    // The stockpiled turn is no longer one: it does not put its writer ahead of b.
    expect(turns.mayWin(kept)).toBe(false);
    expect(turns.mayWin(b)).toBe(true);
  });

  it("send a writer first in line that keeps missing its version to the back", () => {
    const turns = new Turns<string>();
    const a = sentBack(turns);
    const b = sentBack(turns);
    for (let miss = 0; miss < 2; miss++) expect(turns.refused(a)).toEqual({ turn: a, hold: false });
    const moved = turns.refused(a);
    expect(moved.turn).not.toBe(a);
    expect(moved.hold).toBe(true);
    expect(turns.mayWin(b)).toBe(true);
  });

  it("ignore turns it did not hand out: made up, another's number with a wrong secret, or another actor's", () => {
    const turns = new Turns<string>();
    const a = sentBack(turns);
    const foreign = sentBack(new Turns<string>());
    const forged = `${a.split(".")[0]}.${"0".repeat(16)}`;
    for (const token of [foreign, forged, "1", "nonsense", ""]) {
      turns.present(token);
      expect(turns.mayWin(token)).toBe(false);
      const refusal = turns.refused(token);
      expect(refusal.turn).not.toBe(token);
      expect(refusal.hold).toBe(true);
    }
    expect(turns.mayWin(a)).toBe(true);
  });
});
