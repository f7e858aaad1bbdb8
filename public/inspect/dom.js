// @ts-check
// Small DOM helpers. Everything the API returns is shown as text (textContent), never
// parsed as HTML: event payloads and metadata are whatever their writers sent.

/**
 * An element with attributes and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | undefined>} [attributes]
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) element.append(child);
  }
  return element;
}

/**
 * The element with this id, of this type (the page's structure is index.html's).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`index.html has no ${type.name} #${id}`);
  return element;
}

/** A timestamp as a <time>: local date and time to the second, the exact value on hover. @param {string} value */
export function time(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return h("time", {}, value);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const shown =
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return h("time", { datetime: value, title: value }, shown);
}

/** JSON on one line, for table cells. @param {unknown} value */
export function compactJson(value) {
  return JSON.stringify(value) ?? "";
}

/** The polite live region (index.html's #announcer): one sentence, read by screen readers. @param {string} sentence */
export function announce(sentence) {
  const region = byId("announcer", HTMLElement);
  region.textContent = "";
  // A new text node after clearing, so the same sentence twice is read twice.
  setTimeout(() => {
    region.textContent = sentence;
  }, 50);
}

/**
 * Calls `run` at most once per `ms`, with the arguments gathered since (the caller keeps them).
 * @param {() => void} run
 * @param {number} ms
 */
export function throttle(run, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let last = 0;
  const fire = () => {
    timer = undefined;
    last = Date.now();
    run();
  };
  return {
    request() {
      if (timer !== undefined) return;
      timer = setTimeout(fire, Math.max(0, last + ms - Date.now()));
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
