// @ts-check
import { describeError, ProblemError } from "./api.js";
import { readEventsPage, readStateAt, readStreamHead, readWatchMessage } from "./checks.js";
import { announce, compactJson, h, throttle, time } from "./dom.js";

// #/streams/<id>: one stream. Its head; the state at any version (a slider that asks
// GET /streams/:id/state?at=N, debounced, the answer to the last position only); the
// timeline, newest first, read backward a page at a time; and the live tail: the stream's
// watch socket from the newest version shown, each event a new row at the top, and a
// reconnection resumes from the last version received.

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./checks.js").StoredEvent} StoredEvent */
/** @typedef {import("./checks.js").StreamHead} StreamHead */

const EVENTS_PAGE = 100;
const STATE_DEBOUNCE_MS = 200;
const HEAD_REFRESH_MS = 1000;

/**
 * @param {HTMLElement} root
 * @param {Api} api
 * @param {string} streamId
 * @returns {{ dispose(): void }}
 */
export function mountStreamView(root, api, streamId) {
  const abort = new AbortController();
  const base = `/streams/${encodeURIComponent(streamId)}`;
  /** The newest version shown (the watch resumes after it). */
  let last = 0;
  /** @type {string | null} */
  let older = null;
  /** @type {AbortController | undefined} */
  let stateRequest;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let stateTimer;

  document.title = `Stream ${streamId.slice(0, 8)} · glyph-streams inspector`;
  const headList = h("dl", { class: "head" });
  const problem = h("p", { class: "problem", role: "alert", hidden: true });
  const slider = h("input", {
    type: "range",
    id: "state-version",
    min: "0",
    max: "0",
    value: "0",
    step: "1",
    disabled: true,
    "aria-describedby": "state-version-shown",
  });
  const exact = h("input", {
    type: "number",
    id: "state-version-exact",
    min: "0",
    max: "0",
    value: "0",
    step: "1",
    disabled: true,
    inputmode: "numeric",
  });
  const shownAt = h("output", { id: "state-version-shown", for: "state-version" }, "no events yet");
  const state = h("pre", { class: "state", id: "state", tabindex: "0", "aria-labelledby": "state-title" });
  const tailStatus = h("p", { class: "live-status", id: "tail-status" }, "Live tail: connecting…");
  const body = h("tbody", {});
  const loadOlder = h("button", { type: "button", hidden: true }, "Load older events");
  const timeline = h(
    "table",
    { class: "timeline", "aria-busy": "true" },
    h("caption", {}, "Events, newest first; select a version to see the state there"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", class: "num" }, "Version"),
        h("th", { scope: "col" }, "Type"),
        h("th", { scope: "col" }, "Time"),
        h("th", { scope: "col" }, "Event"),
        h("th", { scope: "col" }, "Metadata"),
      ),
    ),
    body,
  );
  root.replaceChildren(
    h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "#/" }, "All streams")),
    h("h1", { id: "stream-title", tabindex: "-1" }, "Stream ", h("span", { class: "mono" }, streamId)),
    headList,
    problem,
    h(
      "section",
      { "aria-labelledby": "state-title", class: "panel" },
      h("h2", { id: "state-title" }, "State"),
      h(
        "div",
        { class: "slider" },
        h("label", { for: "state-version" }, "Version"),
        slider,
        h("label", { for: "state-version-exact", class: "visually-hidden" }, "Version number"),
        exact,
        shownAt,
      ),
      state,
    ),
    h(
      "section",
      { "aria-labelledby": "events-title", class: "panel" },
      h("h2", { id: "events-title" }, "Events"),
      tailStatus,
      h("div", { class: "scroll" }, timeline),
      h("div", { class: "actions" }, loadOlder),
    ),
  );

  /** @param {unknown} error */
  function fail(error) {
    if (abort.signal.aborted) return;
    problem.hidden = false;
    problem.textContent = describeError(error);
  }

  /** @param {StreamHead | undefined} head */
  function showHead(head) {
    const entries = head
      ? [
          ["Type", head.stream_type],
          ["Status", h("span", { class: `badge ${head.status}` }, head.status)],
          ["Version", String(head.version)],
          ["Created", time(head.created_at)],
          ["Updated", time(head.updated_at)],
        ]
      : [["Status", "no events yet: the stream appears with its first event"]];
    headList.replaceChildren(...entries.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  }

  // The state at a version.

  /** The slider's range grows with the stream; at its end, it follows the newest version. @param {number} version */
  function extendTo(version) {
    const following = Number(slider.value) === Number(slider.max);
    for (const input of [slider, exact]) {
      input.min = "1";
      input.max = String(version);
      input.disabled = false;
    }
    if (following) moveTo(version);
    else describePosition();
  }

  function describePosition() {
    const at = Number(slider.value);
    const max = Number(slider.max);
    const text = `version ${at} of ${max}${at === max ? " (the newest)" : ""}`;
    shownAt.textContent = text;
    slider.setAttribute("aria-valuetext", text);
  }

  /** Moves both inputs to `version` and asks for the state there, debounced. @param {number} version */
  function moveTo(version) {
    const bounded = Math.min(Math.max(version, Number(slider.min)), Number(slider.max));
    slider.value = String(bounded);
    exact.value = String(bounded);
    describePosition();
    clearTimeout(stateTimer);
    stateTimer = setTimeout(() => void showState(bounded), STATE_DEBOUNCE_MS);
  }

  /** @param {number} version */
  async function showState(version) {
    stateRequest?.abort();
    const request = new AbortController();
    stateRequest = request;
    state.setAttribute("aria-busy", "true");
    try {
      const answer = await api.get(`${base}/state?at=${version}`, readStateAt, request.signal);
      state.textContent = JSON.stringify(answer.state, null, 2);
      state.dataset.version = String(answer.version);
    } catch (error) {
      if (!request.signal.aborted) state.textContent = describeError(error);
    } finally {
      if (stateRequest === request) state.setAttribute("aria-busy", "false");
    }
  }

  slider.addEventListener("input", () => moveTo(Number(slider.value)));
  exact.addEventListener("change", () => {
    if (exact.value !== "") moveTo(Math.round(Number(exact.value)));
  });

  // The timeline.

  /** @param {StoredEvent} stored @param {boolean} live */
  function eventRow(stored, live) {
    const { type, ...fields } = stored.event;
    const pick = h(
      "button",
      { type: "button", class: "version", "aria-label": `Show the state at version ${stored.version}` },
      String(stored.version),
    );
    pick.addEventListener("click", () => {
      moveTo(stored.version);
      announce(`The state at version ${stored.version} is shown above.`);
    });
    return h(
      "tr",
      { class: live ? "fresh" : undefined, "data-version": String(stored.version) },
      h("td", { class: "num" }, pick),
      h("td", {}, type),
      h("td", {}, time(stored.occurred_at)),
      h("td", {}, h("code", {}, compactJson(fields))),
      h("td", {}, h("code", {}, compactJson(stored.metadata))),
    );
  }

  async function readOlder() {
    if (older === null) return;
    loadOlder.disabled = true;
    try {
      const page = await api.get(older, readEventsPage, abort.signal);
      body.append(...page.events.map((stored) => eventRow(stored, false)));
      older = page.next;
      loadOlder.hidden = older === null;
    } catch (error) {
      fail(error);
    } finally {
      loadOlder.disabled = false;
    }
  }
  loadOlder.addEventListener("click", () => void readOlder());

  // The head, read again after live events (status and times are the server's).

  const refreshHead = throttle(async () => {
    try {
      showHead(await api.get(base, (value) => readStreamHead(value), abort.signal));
    } catch (error) {
      if (!(error instanceof ProblemError && error.status === 404)) fail(error);
    }
  }, HEAD_REFRESH_MS);

  // The live tail, from the newest version shown.

  let arrived = 0;
  const announceArrivals = throttle(() => {
    const newest = body.querySelector("tr")?.dataset.version ?? "";
    announce(
      arrived === 1
        ? `New event, version ${newest}.`
        : `${arrived} new events, the newest version ${newest}.`,
    );
    arrived = 0;
  }, 2000);

  /** @type {{ close(): void } | undefined} */
  let tail;
  function follow() {
    tail = api.follow({
      path: () => `${base}/watch?from=${last}`,
      onFrame: (data) => {
        const message = readWatchMessage(data);
        if (message.type === "event") {
          // Exactly once and in order; a repeat (there should be none) is dropped all the same.
          if (message.event.version <= last) return;
          last = message.event.version;
          body.prepend(eventRow(message.event, true));
          extendTo(last);
          refreshHead.request();
          arrived += 1;
          announceArrivals.request();
          if (tailStatus.dataset.state === "live")
            tailStatus.textContent = `Live tail: on, at version ${last}.`;
        } else if (message.type === "caught_up") {
          tailStatus.dataset.state = "live";
          tailStatus.textContent = `Live tail: on, at version ${last}.`;
        } else if (message.type === "error") {
          tailStatus.textContent = `Live tail: ${message.message}`;
        }
      },
      onState: (state, detail) => {
        if (state === "live") return; // said by caught_up, once the history after `last` is in
        tailStatus.dataset.state = state;
        tailStatus.textContent = {
          connecting: "Live tail: connecting…",
          reconnecting: `Live tail: reconnecting from version ${last}${detail ? ` (${detail})` : ""}…`,
          stopped: `Live tail: off. ${detail}`,
        }[state];
      },
      probe: () => api.get(base, (value) => readStreamHead(value), abort.signal).catch(notFoundIsFine),
    });
  }

  async function start() {
    try {
      const [head, page] = await Promise.all([
        api.get(base, (value) => readStreamHead(value), abort.signal).catch(notFoundIsFine),
        api.get(`${base}/events?direction=backward&limit=${EVENTS_PAGE}`, readEventsPage, abort.signal),
      ]);
      showHead(head);
      body.replaceChildren(...page.events.map((stored) => eventRow(stored, false)));
      older = page.next;
      loadOlder.hidden = older === null;
      last = page.events[0]?.version ?? 0;
      if (last > 0) {
        slider.value = "0";
        slider.max = "0";
        extendTo(last);
      } else {
        state.textContent = "No events yet.";
      }
      timeline.setAttribute("aria-busy", "false");
      follow();
    } catch (error) {
      timeline.setAttribute("aria-busy", "false");
      tailStatus.textContent = "Live tail: off.";
      fail(error);
    }
  }

  void start();
  root.querySelector("h1")?.focus();

  return {
    dispose() {
      abort.abort();
      stateRequest?.abort();
      tail?.close();
      clearTimeout(stateTimer);
      refreshHead.cancel();
      announceArrivals.cancel();
    },
  };
}

/** A stream with no events has no head yet (404): that is no error here. @param {unknown} error */
function notFoundIsFine(error) {
  if (error instanceof ProblemError && error.status === 404) return undefined;
  throw error;
}
