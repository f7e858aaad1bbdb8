import { readdirSync, readFileSync } from "node:fs";

// Where the CPU went during a scenario (Linux /proc; elsewhere nothing is reported):
// the whole machine's busy share, and CPU seconds of this process, of its descendants
// by command name (workerd, the database host child), of the peer's server (by process
// id, see registerPeerProcess) and of all "postgres" processes (the embedded server's
// included, although it is one of our descendants).

const TICKS_PER_SECOND = 100;

export interface CpuReport {
  /** Busy share of all cores over the interval, 0..1. */
  machineBusy: number | undefined;
  /**
   * CPU seconds per component over the interval; "others" is the machine's busy time
   * minus all of the components (other people's work, and kernel time such as
   * loopback networking that is not charged to a process).
   */
  seconds: Partial<Record<Component | "others", number>>;
  wallSeconds: number;
}

function readMachine(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  ticks: number;
}

export function readProcesses(): ProcStat[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const processes: ProcStat[] = [];
  for (const name of entries) {
    try {
      const text = readFileSync(`/proc/${name}/stat`, "utf8");
      const open = text.indexOf("(");
      const close = text.lastIndexOf(")");
      const comm = text.slice(open + 1, close);
      const rest = text.slice(close + 2).split(" ");
      // After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
      const ppid = Number(rest[1]);
      const ticks = Number(rest[11]) + Number(rest[12]);
      processes.push({ pid: Number(name), ppid, comm, ticks });
    } catch {
      // The process ended while we looked.
    }
  }
  return processes;
}

/** The parts of the stack CPU time is counted for. */
export type Component = "workerd" | "loadGenerator" | "databaseHost" | "peer" | "postgres" | "otherChild";

export const COMPONENT_LABELS: Record<Component | "others", string> = {
  workerd: "workerd (Worker, actors, wrangler's proxy)",
  loadGenerator: "load generator (this Node process)",
  databaseHost: "bridge child",
  peer: "peer (Emmett's Node server)",
  postgres: "postgres server processes",
  otherChild: "other children (esbuild, wrangler)",
  others: "everything else (other work, kernel)",
};

/** Process ids of the peer's server (a Node child, told apart from the bridge by its id). */
const peerProcesses = new Set<number>();

export function registerPeerProcess(pid: number): void {
  peerProcesses.add(pid);
}

function componentOf(process_: ProcStat, ours: Set<number>, self: number): Component | undefined {
  if (process_.pid === self) return "loadGenerator";
  if (process_.comm === "postgres") return "postgres";
  if (peerProcesses.has(process_.pid)) return "peer";
  if (ours.has(process_.pid)) {
    if (process_.comm.startsWith("workerd")) return "workerd";
    if (process_.comm.startsWith("node") || process_.comm.startsWith("MainThread")) return "databaseHost";
    return "otherChild";
  }
  return undefined;
}

/** Our processes: this one and all its descendants. */
export function descendantsOf(root: number, processes: readonly ProcStat[]): Set<number> {
  const children = new Map<number, number[]>();
  for (const p of processes) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const ours = new Set<number>();
  const stack = [root];
  while (stack.length > 0 && ours.size < 10_000) {
    const pid = stack.pop() ?? 0;
    for (const child of children.get(pid) ?? []) {
      if (!ours.has(child)) {
        ours.add(child);
        stack.push(child);
      }
    }
  }
  return ours;
}

export interface CpuMeter {
  stop(): CpuReport;
}

/**
 * Counts CPU per component from now until stop(). /proc is read every `intervalMs`, so
 * that processes which end in between (a database connection closed by an idle actor,
 * a restarted workerd) are counted up to their last sample instead of vanishing.
 */
export function startCpuMeter(intervalMs = 500): CpuMeter {
  const startedAt = performance.now();
  const machineStart = readMachine();
  const initial = new Map<number, number>();
  const last = new Map<number, { component: Component; ticks: number }>();
  const scan = (first: boolean) => {
    const processes = readProcesses();
    const ours = descendantsOf(process.pid, processes);
    for (const p of processes) {
      const component = componentOf(p, ours, process.pid);
      if (component === undefined) continue;
      if (first) initial.set(p.pid, p.ticks);
      last.set(p.pid, { component, ticks: p.ticks });
    }
  };
  scan(true);
  const timer = setInterval(() => scan(false), intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      scan(false);
      const machineEnd = readMachine();
      const seconds: CpuReport["seconds"] = {};
      let ours = 0;
      for (const [pid, { component, ticks }] of last) {
        const delta = ticks - (initial.get(pid) ?? 0);
        if (delta <= 0) continue;
        seconds[component] = (seconds[component] ?? 0) + delta / TICKS_PER_SECOND;
        ours += delta;
      }
      let machineBusy: number | undefined;
      if (machineStart && machineEnd && machineEnd.total > machineStart.total) {
        const busy = machineEnd.busy - machineStart.busy;
        machineBusy = busy / (machineEnd.total - machineStart.total);
        seconds.others = Math.max(0, busy - ours) / TICKS_PER_SECOND;
      }
      return { machineBusy, seconds, wallSeconds: (performance.now() - startedAt) / 1000 };
    },
  };
}

/** The machine's busy share over `ms`, and the busiest processes outside this run. */
export async function sampleMachine(ms: number): Promise<{
  busy: number | undefined;
  top: Array<{ name: string; cpuPercent: number }>;
}> {
  const before = readMachine();
  const ticksBefore = new Map(readProcesses().map((p) => [p.pid, p.ticks] as const));
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = readMachine();
  const processes = readProcesses();
  const ours = descendantsOf(process.pid, processes);
  const byName = new Map<string, number>();
  // This run's ancestors (npm, the shell) are not "other work" either.
  const ancestors = new Set<number>();
  const parentOf = new Map(processes.map((p) => [p.pid, p.ppid] as const));
  for (
    let pid = process.ppid;
    pid > 1 && !ancestors.has(pid) && ancestors.size < 64;
    pid = parentOf.get(pid) ?? 0
  ) {
    ancestors.add(pid);
  }
  for (const p of processes) {
    if (p.pid === process.pid || ours.has(p.pid) || ancestors.has(p.pid)) continue;
    const delta = p.ticks - (ticksBefore.get(p.pid) ?? p.ticks);
    if (delta > 0) byName.set(p.comm, (byName.get(p.comm) ?? 0) + delta);
  }
  const top = [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([name, ticks]) => ({ name, cpuPercent: (ticks / TICKS_PER_SECOND / (ms / 1000)) * 100 }));
  const busy =
    before && after && after.total > before.total
      ? (after.busy - before.busy) / (after.total - before.total)
      : undefined;
  return { busy, top };
}
