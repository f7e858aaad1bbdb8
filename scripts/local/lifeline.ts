// A child process of a local tool (the embedded database's host, the stack behind
// `npm start`) must never outlive its parent, however the parent ends: Ctrl-C, a
// signal, or SIGKILL, which gives the parent no chance to clean up. So the parent
// holds the child's stdin open for as long as it lives. The child stops (once) when
// it reads "stop", when stdin closes (the parent is gone), or on SIGINT, SIGTERM or
// SIGHUP, and then exits.

/** Calls `stop` once on the first reason to stop, then exits with `exitCode` (or 1 if `stop` threw). */
export function holdLifeline(stop: () => Promise<void>, exitCode = 0): void {
  let stopping = false;
  const stopOnce = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(exitCode),
      (error: unknown) => {
        process.stderr.write(`while stopping: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, stopOnce);
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    if (chunk.includes("stop")) stopOnce();
  });
  process.stdin.on("end", stopOnce).on("error", stopOnce);
  process.stdin.resume();
}
