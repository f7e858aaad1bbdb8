import { spawn } from "node:child_process";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";

// `npm start`: the whole stack on this machine — the database (DATABASE_URL, or the
// embedded PostgreSQL 17 kept in .data/postgres), the bridge, the migrations and the
// Worker on http://127.0.0.1:$PORT (8787) — served by scripts/local/serve-stack.ts in a
// process group of its own. This process only relays the stop: Ctrl-C, SIGTERM or
// SIGHUP asks the stack to stop (the Worker, then the database with a fast shutdown);
// the same signal again a second later forces. Should this process die without a word
// (SIGKILL), the stack sees its lifeline (stdin) close and stops the same clean way.
// Run it as `node --import tsx` (npm start does), not through the tsx CLI, which
// SIGKILLs its child moments after relaying a signal. POSIX only (process groups).

const SERVE = fileURLToPath(new URL("./local/serve-stack.ts", import.meta.url));
/** One Ctrl-C often arrives twice (the terminal signals the group, npm relays it too). */
const DUPLICATE_SIGNAL_MS = 1_000;

const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `npm start: wrangler needs Node.js >= 22.12 and this is ${process.version}; run it as \`npm start\`, which uses the pinned Node 22.`,
  );
  process.exit(1);
}

const stack = spawn(process.execPath, ["--import", "tsx", SERVE], {
  detached: true,
  stdio: ["pipe", "inherit", "inherit"],
});
stack.stdin?.on("error", () => undefined);

let stopRequestedAt: number | undefined;
let stopCode: number | undefined;

function onSignal(signal: NodeJS.Signals): void {
  const now = Date.now();
  if (stopRequestedAt === undefined) {
    stopRequestedAt = now;
    stopCode = 128 + constants.signals[signal];
    console.log(`\n${signal}: stopping (again to force) …`);
    stack.stdin?.end("stop\n");
    return;
  }
  if (now - stopRequestedAt < DUPLICATE_SIGNAL_MS) return;
  console.error(`${signal} again: forcing.`);
  // The database's host has a lifeline of its own and still shuts the server down cleanly.
  signalGroup("SIGKILL");
}

function signalGroup(signal: NodeJS.Signals): void {
  if (stack.pid === undefined) return;
  try {
    process.kill(-stack.pid, signal);
  } catch {
    // The group is gone.
  }
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => onSignal(signal));
stack.once("exit", (code, signal) => {
  // Whatever the stack left in its group (workerd, should it have died abruptly) goes too.
  signalGroup("SIGTERM");
  process.exit(stopCode ?? code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
});
