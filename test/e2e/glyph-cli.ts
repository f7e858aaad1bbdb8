import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

// The `glyph` binary (package.json "bin") as a child process, as a shell runs it.

export const GLYPH = fileURLToPath(new URL("../../cli/glyph.mjs", import.meta.url));

export interface GlyphRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `glyph <args>` with `env`, `input` on its stdin (none: closed), to its exit. */
export function runGlyph(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<GlyphRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [GLYPH, ...args],
      { env, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}
