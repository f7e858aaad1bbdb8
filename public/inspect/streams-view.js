// @ts-check
import { describeError, ProblemError } from "./api.js";
import { readFeedMessage, readStreamHead, readStreamsPage, STATUSES } from "./checks.js";
import { announce, h, throttle, time } from "./dom.js";

// #/?type=&status=: the streams, newest first, kept up to date by the global feed's
// WebSocket (GET /watch). The listing is read in the server's order (GET
// /streams?order=newest), a page at a time: "Load more" reads on with the cursor, so the
// order is exact however many streams there are. The feed is followed from its head
// (after=now): the list is read again when a socket starts (the first time, and after
// a reconnection), for what changed since it was read, as far as it had been read (so a
// reconnection keeps the pages "Load more" read), and from then on a feed event
// names a stream that changed: its head is read again (at most HEADS_PER_FLUSH each
// second), so versions and statuses are the server's own, a new stream takes its place
// by creation time, and a stream that no longer matches the filters leaves the list.

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./checks.js").StreamHead} StreamHead */
/** @typedef {{ type: string, status: string }} Filters */

const PAGE_SIZE = 100;
const FLUSH_EVERY_MS = 1000;
const HEADS_PER_FLUSH = 20;
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

/** Whether `a` was created after `b` (as the heads show it, to the millisecond). @param {StreamHead} a @param {StreamHead} b */
function newer(a, b) {
  return Date.parse(a.created_at) > Date.parse(b.created_at);
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
  /** The streams read, in the server's order (newest first). @type {Map<string, StreamHead>} */
  let streams = new Map();
  /** Stream ids the feed said changed, not yet read again. */
  const changed = new Set();
  /** Rows that changed in the last flush, highlighted once. */
  const fresh = new Set();
  /** The next page's cursor (order=newest); null once the last page is read. @type {string | null} */
  let cursor = null;
  /**
   * Counts the reloads begun: a read (a reload's, or "Load more"'s) begun before the
   * newest reload is of a list that is gone, and its answer is dropped, so a "Load more"
   * that a reload overtook neither adds a page to the old list nor moves the new list's
   * cursor past pages it never showed.
   */
  let generation = 0;
  /** The newest reload, which answers for the ones it superseded. @type {Promise<boolean>} */
  let latestReload = Promise.resolve(false);
  /**
   * For each reload in flight, the heads the feed had read again meanwhile (null: the
   * stream left the list), which are newer than its page may be.
   * @type {Set<Map<string, StreamHead | null>>}
   */
  const reloading = new Set();

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
  const morePages = h("button", { type: "button", hidden: true }, `Load ${PAGE_SIZE} more`);
  root.replaceChildren(
    h("h1", { id: "streams-title", tabindex: "-1" }, "Streams"),
    h("div", { class: "toolbar" }, filterForm, openForm),
    liveStatus,
    problem,
    h("div", { class: "scroll" }, table),
    h("div", { class: "actions" }, summary, morePages),
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
  morePages.addEventListener("click", async () => {
    const at = generation;
    morePages.disabled = true;
    try {
      const page = await readPage(cursor);
      if (at !== generation) return; // the list was read again meanwhile: this page is of the old one
      for (const head of page.streams) {
        // One listed already (placed from the feed) keeps its place, and the newer head.
        const known = streams.get(head.stream_id);
        if (known === undefined || known.version < head.version) streams.set(head.stream_id, head);
      }
      cursor = page.next_cursor;
      render();
    } catch (error) {
      if (at === generation) fail(error);
    } finally {
      // A reload begun meanwhile enables the button when it is done.
      if (at === generation) morePages.disabled = false;
    }
  });

  /** @param {unknown} error */
  function fail(error) {
    if (abort.signal.aborted) return;
    problem.hidden = false;
    problem.textContent = describeError(error);
  }

  /** The list's query with the filters: `limit` streams, newest first. @param {number} limit */
  function listQuery(limit) {
    const query = new URLSearchParams({ order: "newest", limit: String(limit) });
    if (filters.type) query.set("type", filters.type);
    if (filters.status) query.set("status", filters.status);
    return query;
  }

  /**
   * Reads the page after `after` (the first when null); changes nothing.
   * @param {string | null} after
   */
  function readPage(after) {
    const query = listQuery(PAGE_SIZE);
    if (after) query.set("cursor", after);
    return api.get(`/streams?${query}`, readStreamsPage, abort.signal);
  }

  /**
   * Reads the list again from the top (when the view opens, and when a feed socket
   * starts: what changed before it is not in the feed), a page at a time until it has as
   * many streams as were listed, so the pages "Load more" read stay; says whether it
   * could. A newer reload supersedes it: its answer is dropped and the newer one's given.
   * "Load more" waits for it.
   * @returns {Promise<boolean>}
   */
  function reload() {
    const at = ++generation;
    latestReload = readAgain(at);
    return latestReload;
  }

  /** @param {number} at  the reload's generation */
  async function readAgain(at) {
    /** @type {Map<string, StreamHead | null>} */
    const meanwhile = new Map();
    reloading.add(meanwhile);
    morePages.disabled = true;
    table.setAttribute("aria-busy", "true");
    const wanted = streams.size;
    try {
      /** @type {Map<string, StreamHead>} */
      const read = new Map();
      /** @type {string | null} */
      let next = null;
      do {
        const page = await readPage(next);
        if (at !== generation) return latestReload;
        for (const head of page.streams) read.set(head.stream_id, head);
        next = page.next_cursor;
      } while (next !== null && read.size < wanted);
      problem.hidden = true;
      if (streams.size > 0) for (const id of read.keys()) if (!streams.has(id)) fresh.add(id);
      /** @type {StreamHead[]} */
      const found = [];
      for (const [id, head] of meanwhile) {
        const listed = read.get(id);
        if (head === null) read.delete(id);
        else if (listed === undefined) found.push(head);
        else if (listed.version < head.version) read.set(id, head); // versions only grow
      }
      streams = read;
      cursor = next;
      place(found);
      render();
      return true;
    } catch (error) {
      if (at !== generation) return latestReload;
      fail(error);
      return false;
    } finally {
      reloading.delete(meanwhile);
      if (at === generation) {
        morePages.disabled = false;
        table.setAttribute("aria-busy", "false");
      }
    }
  }

  function render() {
    const ordered = [...streams.values()];
    const focused =
      document.activeElement instanceof HTMLElement ? document.activeElement.dataset.stream : undefined;
    body.replaceChildren(...ordered.map((head) => row(head, fresh.has(head.stream_id))));
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
          : `The ${count} newest streams; more match.`;
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
    /** Streams not listed yet. @type {StreamHead[]} */
    const found = [];
    for (const head of heads) {
      if (head === undefined) continue;
      if (typeof head === "string" || !matches(filters, head)) {
        const id = typeof head === "string" ? head : head.stream_id;
        streams.delete(id);
        for (const meanwhile of reloading) meanwhile.set(id, null);
        continue;
      }
      for (const meanwhile of reloading) meanwhile.set(head.stream_id, head);
      const known = streams.get(head.stream_id);
      if (known !== undefined && known.version > head.version) continue;
      if (known === undefined) found.push(head);
      else streams.set(head.stream_id, head); // in its place
      fresh.add(head.stream_id);
    }
    const added = place(found);
    render();
    if (added > 0) announce(added === 1 ? "A new stream is listed." : `${added} new streams are listed.`);
    if (changed.size > 0) flush.request();
  }, FLUSH_EVERY_MS);

  /**
   * Puts streams the list did not have in their place by creation time, newest first;
   * one older than every stream listed while more pages are unread is left to "Load
   * more". Answers how many were placed.
   * @param {StreamHead[]} found
   */
  function place(found) {
    if (found.length === 0) return 0;
    const ordered = [...streams.values()];
    let placed = 0;
    for (const head of found) {
      const at = ordered.findIndex((listed) => newer(head, listed));
      if (at === -1 && cursor !== null) continue;
      ordered.splice(at === -1 ? ordered.length : at, 0, head);
      placed += 1;
    }
    streams = new Map(ordered.map((head) => [head.stream_id, head]));
    return placed;
  }

  /** @type {{ close(): void } | undefined} */
  let feed;
  // Every socket starts at the feed's head: nothing is replayed, and what changed before
  // it started (since the list was read, or while disconnected) is read with the list.
  const follow = () =>
    api.follow({
      path: () => {
        const query = new URLSearchParams({ after: "now" });
        if (filters.type) query.set("stream_type", filters.type);
        return `/watch?${query}`;
      },
      onFrame: (data) => {
        const message = readFeedMessage(data);
        if (message.type === "event") {
          changed.add(message.event.stream_id);
          flush.request();
        } else if (message.type === "started") {
          void reload();
        } else if (message.type === "caught_up") {
          liveStatus.dataset.state = "live";
          liveStatus.textContent = "Live updates: on.";
        } else if (message.type === "error") {
          liveStatus.textContent = `Live updates: ${message.message}`;
        }
      },
      onState: (state, detail) => {
        liveStatus.dataset.state = state === "live" ? "catching-up" : state;
        liveStatus.textContent = {
          connecting: "Live updates: connecting…",
          live: "Live updates: catching up…", // on at caught_up
          reconnecting: `Live updates: reconnecting${detail ? ` (${detail})` : ""}…`,
          stopped: `Live updates: off. ${detail}`,
        }[state];
      },
      // What the list reads, with its filters: a token limited to stream types may list
      // only those, and a probe without the type would be refused (403) for its own
      // query, stopping live updates for good. The list was read with this query, so a
      // refusal now is the token's (revoked or narrowed): final, and in the server's words.
      probe: () => api.get(`/streams?${listQuery(1)}`, readStreamsPage, abort.signal),
    });

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
