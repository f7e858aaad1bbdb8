import { describe, expect, it } from "vitest";
import { TURN_HOLD_MS, Turns } from "../../src/actor/turns";

// The order of writers racing on exact expected versions (src/actor/turns.ts): first
// refused, first to win; a turn nobody sends back holds no one up; a claimed turn whose
// writer went quiet, or that keeps missing its version, stops holding the others.

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** A turn handed out and sent back once (claimed), as a retry does. */
function claimed(turns: Turns<string>, token?: string): string {
  const { turn } = turns.refused(token);
  turns.present(turn);
  return turn;
}

describe("Turns", () => {
  it("let anyone win while no turn is claimed, and a turn that is never sent back claims nothing", () => {
    const turns = new Turns<string>();
    expect(turns.mayWin(undefined)).toBe(true);
    const first = turns.refused(undefined);
    expect(first.hold).toBe(false);
    expect(turns.mayWin(undefined)).toBe(true);
    expect(turns.refused(undefined).hold).toBe(false);
  });

  it("serve claimed turns in the order they were handed out, ahead of appends with none", () => {
    const turns = new Turns<string>();
    const a = claimed(turns);
    const b = claimed(turns);
    expect(turns.mayWin(undefined)).toBe(false);
    expect(turns.mayWin(b)).toBe(false);
    expect(turns.mayWin(a)).toBe(true);
    turns.done(a);
    expect(turns.mayWin(b)).toBe(true);
    expect(turns.mayWin(undefined)).toBe(false);
    turns.done(b);
    expect(turns.mayWin(undefined)).toBe(true);
  });

  it("hold a refused append behind an earlier claimed turn and release it when that turn is done", () => {
    const turns = new Turns<string>();
    const a = claimed(turns);
    const refusal = turns.refused(undefined);
    expect(refusal.hold).toBe(true);
    turns.hold("b's append", refusal.turn);
    expect(turns.holding).toBe(1);
    expect(turns.release()).toEqual([]);
    turns.done(a);
    expect(turns.release()).toEqual(["b's append"]);
    expect(turns.holding).toBe(0);
    // Released, b is first in line: its next refusal is answered, with the turn it holds.
    expect(turns.refused(refusal.turn)).toEqual({ turn: refusal.turn, hold: false });
  });

  it("keep a writer's turn across its refusals, and let the first in line be answered rather than held", () => {
    const turns = new Turns<string>();
    const a = claimed(turns);
    expect(turns.refused(a)).toEqual({ turn: a, hold: false });
    const b = claimed(turns);
    expect(turns.refused(b)).toEqual({ turn: b, hold: true });
  });

  it("stop holding the others back once a claimed turn's writer is quiet for TURN_HOLD_MS", () => {
    const time = clock();
    const turns = new Turns<string>(time.now);
    const a = claimed(turns);
    const b = turns.refused(undefined);
    turns.hold("b's append", b.turn);
    time.advance(TURN_HOLD_MS / 2);
    expect(turns.release()).toEqual([]);
    time.advance(TURN_HOLD_MS / 2 + 1);
    // a lapsed; b's turn, kept live while held, is first now.
    expect(turns.release()).toEqual(["b's append"]);
    expect(turns.mayWin(a)).toBe(true);
    expect(turns.mayWin(undefined)).toBe(false);
  });

  it("send a writer first in line that keeps missing its version to the back", () => {
    const turns = new Turns<string>();
    const a = claimed(turns);
    const b = claimed(turns);
    for (let miss = 0; miss < 3; miss++) expect(turns.refused(a)).toEqual({ turn: a, hold: false });
    const moved = turns.refused(a);
    expect(moved.turn).not.toBe(a);
    expect(moved.hold).toBe(true);
    expect(turns.mayWin(b)).toBe(true);
  });

  it("ignore turns it did not hand out: made up, malformed, or another actor's", () => {
    const turns = new Turns<string>();
    const a = claimed(turns);
    const other = new Turns<string>();
    const foreign = claimed(other);
    for (const token of [foreign, "00000000-1", `${a.split("-")[0]}-999`, "nonsense", ""]) {
      expect(turns.mayWin(token)).toBe(false);
      const refusal = turns.refused(token);
      expect(refusal.turn).not.toBe(token);
      expect(refusal.hold).toBe(true);
    }
  });
});
