import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

// The machine's Chromium (Debian's `chromium` package; .ci/run installs it) driven by
// playwright-core, which downloads no browser of its own. Used by the inspector's browser
// tests and by `npm run screenshots`.

/** Where Chromium is: CHROMIUM_PATH, or Debian's. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH || "/usr/bin/chromium";
}

/**
 * A headless Chromium with a fresh profile (Playwright makes one per launch and deletes it
 * on close), nothing running in the background, no network but what the page asks for.
 * Throws a sentence saying how to install it when it is missing.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new Error(
      `No Chromium at ${executablePath}: install Debian's (apt-get install --no-install-recommends chromium, as .ci/run does) or set CHROMIUM_PATH to another Chromium.`,
    );
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
