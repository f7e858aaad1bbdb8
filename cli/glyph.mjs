#!/usr/bin/env node
// The `glyph` command: runs cli/main.ts with tsx, so no build step is needed.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
