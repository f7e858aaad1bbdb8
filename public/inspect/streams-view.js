// @ts-check
import { describeError, ProblemError } from "./api.js";
import { readFeedMessage, readStreamHead, readStreamsPage, STATUSES } from "./checks.js";
import { announce, h, throttle, time } from "./dom.js";

// #/?type=&status=: the streams, newest first, kept up to date by the global feed's
// WebSocket (GET /watch). The listing (GET /streams) pages in stream id order, so the
// view reads up to AUTO_PAGES pages at once and orders what it has by creation time;
// "Load more" reads on with the cursor. A feed event names a stream that changed: its
// head is read again (at most HEADS_PER_FLUSH each second), so versions and statuses are
// the server's own, and a stream that no longer matches the filters leaves the list.

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./checks.js").StreamHead} StreamHead */
/** @typedef {{ type: string, status: string }} Filters */

const PAGE_SIZE = 1000;
/** Pages read when the view opens (and when it reloads): up to 2,000 streams, in two requests. */
const AUTO_PAGES = 2;
const ROWS_STEP = 100;
const FLUSH_EVERY_MS = 1000;
const HEADS_PER_FLUSH = 20;
/**
 * GET /watch replays the feed from its beginning before it goes live (it has no "from
 * now"). Past this many replayed events the view stops replaying and reloads the list
 * every POLL_EVERY_MS instead, so that a long feed is not sent to every open inspector.
 */
const REPLAY_LIMIT = 2000;
const POLL_EVERY_MS = 15_000;
const STREAM_TYPE = /^[A-Za-z0-9_.-]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The filters in the hash's query (#/?type=&status=); anything unusable is dropped. @param {string} hash */
export function parseFilters(hash) {
  const query = new URLSearchParams(hash.split("?")[1] ?? "");
  const type = query.get("type") ?? "";
  const status = query.get("status") ?? "";
  return { type: STREAM_TYPE.test(type) ? type : "", status: STATUSES.includes(status) ? status : "" };
}

/** @param {Filters} filters */
function filtersHash(filters) {
  const query = new URLSearchParams();
  if (filters.type) query.set("type", filters.type);
  if (filters.status) query.set("status", filters.status);
  const text = query.toString();
  return text ? `#/?${text}` : "#/";
}

/** Newest first; streams created at the same instant by id. @param {StreamHead} a @param {StreamHead} b */
function newestFirst(a, b) {
  const created = Date.parse(b.created_at) - Date.parse(a.created_at);
  if (created !== 0 && !Number.isNaN(created)) return created;
  return a.stream_id < b.stream_id ? -1 : a.stream_id > b.stream_id ? 1 : 0;
}

/** @param {Filters} filters @param {StreamHead} head */
function matches(filters, head) {
  return (
    (!filters.type || head.stream_type === filters.type) &&
    (!filters.status || head.status === filters.status)
  );
}

/**
 * @param {HTMLElement} root
 * @param {Api} api
 * @param {Filters} filters
 * @returns {{ dispose(): void }}
 */
export function mountStreamsView(root, api, filters) {
  const abort = new AbortController();
  /** @type {Map<string, StreamHead>} */
  const streams = new Map();
  /** Stream ids the feed said changed, not yet read again. */
  const changed = new Set();
  /** Rows that changed in the last flush, highlighted once. */
  const fresh = new Set();
  /** @type {string | null} */
  let cursor = null;
  let shown = ROWS_STEP;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let poll;

  document.title = "Streams · glyph-streams inspector";
  const typeInput = h("input", {
    id: "filter-type",
    name: "type",
    value: filters.type,
    pattern: "[A-Za-z0-9_.\\-]{1,64}",
    list: "known-types",
    autocomplete: "off",
    spellcheck: "false",
  });
  const statusSelect = h(
    "select",
    { id: "filter-status", name: "status" },
    h("option", { value: "" }, "any"),
    ...STATUSES.map((status) => h("option", { value: status, selected: status === filters.status }, status)),
  );
  const knownTypes = h("datalist", { id: "known-types" });
  const filterForm = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter streams" },
    h("div", { class: "field" }, h("label", { for: "filter-type" }, "Type"), typeInput, knownTypes),
    h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
    h("button", { type: "submit" }, "Apply filters"),
  );
  const openInput = h("input", {
    id: "open-id",
    name: "stream",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "00000000-0000-0000-0000-000000000000",
    pattern: "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    title: "A stream id: a UUID",
  });
  const openForm = h(
    "form",
    { class: "filters", "aria-label": "Open a stream by id" },
    h("div", { class: "field wide" }, h("label", { for: "open-id" }, "Stream id"), openInput),
    h("button", { type: "submit" }, "Open stream"),
  );
  const liveStatus = h("p", { class: "live-status", id: "streams-live" }, "Live updates: connecting…");
  const problem = h("p", { class: "problem", role: "alert", hidden: true });
  const caption = h("caption", {}, filtersCaption(filters));
  const body = h("tbody", {});
  const table = h(
    "table",
    { class: "streams", "aria-busy": "true" },
    caption,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Stream"),
        h("th", { scope: "col" }, "Type"),
        h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col", class: "num" }, "Version"),
        h("th", { scope: "col" }, "Created"),
        h("th", { scope: "col" }, "Updated"),
      ),
    ),
    body,
  );
  const summary = h("p", { class: "summary", id: "streams-summary" });
  const moreRows = h("button", { type: "button", hidden: true }, `Show ${ROWS_STEP} more`);
  const morePages = h(
    "button",
    { type: "button", hidden: true },
    `Load ${PAGE_SIZE.toLocaleString("en")} more`,
  );
  root.replaceChildren(
    h("h1", { id: "streams-title", tabindex: "-1" }, "Streams"),
    h("div", { class: "toolbar" }, filterForm, openForm),
    liveStatus,
    problem,
    h("div", { class: "scroll" }, table),
    h("div", { class: "actions" }, summary, moreRows, morePages),
  );

  filterForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    if (!typeInput.checkValidity()) {
      typeInput.reportValidity();
      return;
    }
    const next = filtersHash({ type: typeInput.value.trim(), status: statusSelect.value });
    if (location.hash === next) void reload();
    else location.hash = next;
  });
  openForm.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const id = openInput.value.trim();
    if (!UUID.test(id)) {
      openInput.reportValidity();
      return;
    }
    location.hash = `#/streams/${id.toLowerCase()}`;
  });
  moreRows.addEventListener("click", () => {
    shown += ROWS_STEP;
    render();
  });
  morePages.addEventListener("click", async () => {
    morePages.disabled = true;
    try {
      await readPages(1, streams);
      render();
    } catch (error) {
      fail(error);
    } finally {
      morePages.disabled = false;
    }
  });

  /** @param {unknown} error */
  function fail(error) {
    if (abort.signal.aborted) return;
    problem.hidden = false;
    problem.textContent = describeError(error);
  }

  /**
   * Reads up to `pages` pages after the cursor into `into`.
   * @param {number} pages
   * @param {Map<string, StreamHead>} into
   */
  async function readPages(pages, into) {
    for (let page = 0; page < pages; page++) {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (filters.type) query.set("type", filters.type);
      if (filters.status) query.set("status", filters.status);
      if (cursor) query.set("cursor", cursor);
      const answer = await api.get(`/streams?${query}`, readStreamsPage, abort.signal);
      for (const head of answer.streams) into.set(head.stream_id, head);
      cursor = answer.next_cursor;
      if (cursor === null) return;
    }
  }

  /**
   * Reads the list again from its start (the first time, after a replayed feed, and when
   * polling); says whether it could.
   */
  async function reload() {
    /** @type {Map<string, StreamHead>} */
    const read = new Map();
    try {
      cursor = null;
      await readPages(AUTO_PAGES, read);
      problem.hidden = true;
      if (streams.size > 0) for (const id of read.keys()) if (!streams.has(id)) fresh.add(id);
      streams.clear();
      for (const [id, head] of read) streams.set(id, head);
      render();
      return true;
    } catch (error) {
      fail(error);
      return false;
    } finally {
      table.setAttribute("aria-busy", "false");
    }
  }

  function render() {
    const ordered = [...streams.values()].sort(newestFirst);
    const focused =
      document.activeElement instanceof HTMLElement ? document.activeElement.dataset.stream : undefined;
    body.replaceChildren(...ordered.slice(0, shown).map((head) => row(head, fresh.has(head.stream_id))));
    fresh.clear();
    // The link that had the focus is a new element now: give it back.
    const link = focused ? body.querySelector(`a[data-stream="${CSS.escape(focused)}"]`) : null;
    if (link instanceof HTMLElement) link.focus();
    const count = streams.size.toLocaleString("en");
    summary.textContent =
      ordered.length === 0
        ? "No streams match."
        : cursor === null
          ? `${count} ${streams.size === 1 ? "stream" : "streams"}, newest first.`
          : `${count} streams read so far, newest first among them; more match.`;
    moreRows.hidden = ordered.length <= shown;
    morePages.hidden = cursor === null;
    knownTypes.replaceChildren(
      ...[...new Set(ordered.map((head) => head.stream_type))]
        .sort()
        .map((type) => h("option", { value: type })),
    );
  }

  /** Reads the heads of the streams the feed said changed, up to HEADS_PER_FLUSH at a time. */
  const flush = throttle(async () => {
    const ids = [...changed].slice(0, HEADS_PER_FLUSH);
    for (const id of ids) changed.delete(id);
    const heads = await Promise.all(
      ids.map((id) =>
        api
          .get(`/streams/${id}`, (value) => readStreamHead(value), abort.signal)
          .catch((error) => {
            // Gone, or not this token's to see: it leaves the list; anything else is retried at the next change.
            if (error instanceof ProblemError && (error.status === 404 || error.status === 403)) return id;
            return undefined;
          }),
      ),
    );
    if (abort.signal.aborted) return;
    let added = 0;
    for (const head of heads) {
      if (head === undefined) continue;
      if (typeof head === "string") {
        streams.delete(head);
        continue;
      }
      if (!matches(filters, head)) {
        streams.delete(head.stream_id);
        continue;
      }
      if (!streams.has(head.stream_id)) added += 1;
      streams.set(head.stream_id, head);
      fresh.add(head.stream_id);
    }
    render();
    if (added > 0) announce(added === 1 ? "A new stream is listed." : `${added} new streams are listed.`);
    if (changed.size > 0) flush.request();
  }, FLUSH_EVERY_MS);

  /** The feed's position: the last event's checkpoint, or caught_up's. @type {string | undefined} */
  let checkpoint;
  let live = false;
  let replayed = 0;
  /** @type {{ close(): void } | undefined} */
  let feed;
  const follow = () =>
    api.follow({
      path: () => {
        const query = new URLSearchParams();
        if (checkpoint) query.set("after", checkpoint);
        if (filters.type) query.set("stream_type", filters.type);
        return query.size > 0 ? `/watch?${query}` : "/watch";
      },
      onFrame: (data) => {
        const message = readFeedMessage(data);
        if (message.type === "event") {
          checkpoint = message.event.checkpoint;
          if (live) {
            changed.add(message.event.stream_id);
            flush.request();
          } else if (++replayed > REPLAY_LIMIT) {
            pollInstead();
          }
        } else if (message.type === "caught_up") {
          checkpoint = message.checkpoint;
          liveStatus.dataset.state = "live";
          liveStatus.textContent = "Live updates: on.";
          if (!live) {
            live = true;
            // What the replay passed over may have changed since the list was read.
            if (replayed > 0) void reload();
          }
        } else if (message.type === "error") {
          liveStatus.textContent = `Live updates: ${message.message}`;
        }
      },
      onState: (state, detail) => {
        if (poll !== undefined) return;
        liveStatus.dataset.state = state === "live" ? "catching-up" : state;
        liveStatus.textContent = {
          connecting: "Live updates: connecting…",
          live: "Live updates: catching up…", // on at caught_up
          reconnecting: `Live updates: reconnecting${detail ? ` (${detail})` : ""}…`,
          stopped: `Live updates: off. ${detail}`,
        }[state];
      },
      probe: () => api.get("/streams?limit=1", readStreamsPage, abort.signal),
    });

  function pollInstead() {
    if (poll !== undefined) return; // frames already on their way after the close
    feed?.close();
    liveStatus.dataset.state = "polling";
    liveStatus.textContent = `Live updates: the list is read again every ${POLL_EVERY_MS / 1000} s (the feed is too long to replay here).`;
    poll = setInterval(() => void reload(), POLL_EVERY_MS);
  }

  // The feed is followed once the list could be read (a refused token opens no socket).
  void reload().then((read) => {
    if (read && !abort.signal.aborted) feed = follow();
    else liveStatus.textContent = "Live updates: off.";
  });
  root.querySelector("h1")?.focus();

  return {
    dispose() {
      abort.abort();
      feed?.close();
      flush.cancel();
      clearInterval(poll);
    },
  };
}

/** @param {Filters} filters */
function filtersCaption(filters) {
  const parts = [];
  if (filters.type) parts.push(`of type ${filters.type}`);
  if (filters.status) parts.push(`${filters.status}`);
  return `Streams${parts.length ? ` (${parts.join(", ")})` : ""}, newest first`;
}

/** @param {StreamHead} head @param {boolean} fresh */
function row(head, fresh) {
  return h(
    "tr",
    { class: fresh ? "fresh" : undefined },
    h(
      "td",
      {},
      h(
        "a",
        { href: `#/streams/${head.stream_id}`, class: "mono", "data-stream": head.stream_id },
        head.stream_id,
      ),
    ),
    h("td", {}, head.stream_type),
    h("td", {}, h("span", { class: `badge ${head.status}` }, head.status)),
    h("td", { class: "num" }, String(head.version)),
    h("td", {}, time(head.created_at)),
    h("td", {}, time(head.updated_at)),
  );
}
