// PostgreSQL's json and jsonb cannot hold U+0000 or unpaired UTF-16 surrogates (JSON
// allows both). Such text is refused before it reaches the database, naming where it is.

/** Why PostgreSQL's jsonb cannot store this string (U+0000, an unpaired surrogate), if it cannot. */
function unstorable(text: string): string | undefined {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0) return "contains the character U+0000, which PostgreSQL cannot store";
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        index++;
        continue;
      }
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      return `contains an unpaired surrogate (U+${code.toString(16).toUpperCase()}), which is not valid Unicode`;
    }
  }
  return undefined;
}

/** Depth beyond which JsonValue has already refused the value. */
const UNSTORABLE_SEARCH_DEPTH = 128;

/** The first string (value or key) that cannot be stored, with its path. */
export function findUnstorableText(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | undefined {
  if (typeof value === "string") {
    const message = unstorable(value);
    return message === undefined ? undefined : { path, message };
  }
  if (typeof value !== "object" || value === null || path.length > UNSTORABLE_SEARCH_DEPTH) return undefined;
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? [...value.entries()]
    : Object.entries(value);
  for (const [key, item] of entries) {
    const keyMessage = typeof key === "string" ? unstorable(key) : undefined;
    if (keyMessage !== undefined) return { path: [...path, key], message: `its key ${keyMessage}` };
    const found = findUnstorableText(item, [...path, key]);
    if (found) return found;
  }
  return undefined;
}
