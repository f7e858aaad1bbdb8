// @ts-check
import { Api, describeError, ProblemError } from "./api.js";
import { readStreamsPage } from "./checks.js";
import { byId } from "./dom.js";
import { mountStreamView } from "./stream-view.js";
import { mountStreamsView, parseFilters } from "./streams-view.js";

// The inspector: a token form, then two views chosen by the URL's hash: #/ (the streams,
// with ?type=&status= filters) and #/streams/<id> (one stream). The token lives in this
// tab's sessionStorage and nowhere else; a 401 from any request brings the form back.

const TOKEN_KEY = "glyph-streams.inspector.token";

/** @typedef {{ dispose(): void }} View */

/** @type {View | undefined} */
let current;

const loginView = byId("login-view", HTMLElement);
const loginForm = byId("login-form", HTMLFormElement);
const loginError = byId("login-error", HTMLElement);
const tokenInput = byId("token", HTMLInputElement);
const forget = byId("forget", HTMLButtonElement);
const streamsView = byId("streams-view", HTMLElement);
const streamView = byId("stream-view", HTMLElement);

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

/** @param {string} token */
function api(token) {
  return new Api(token, (problem) =>
    signOut(`The server refused the token: ${problem.detail || problem.title}`),
  );
}

/** Back to the token form, with a sentence saying why (or none). @param {string} message */
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  current?.dispose();
  current = undefined;
  streamsView.hidden = true;
  streamView.hidden = true;
  forget.hidden = true;
  loginView.hidden = false;
  loginError.textContent = message;
  tokenInput.value = "";
  document.title = "Inspector · glyph-streams";
  tokenInput.focus();
}

/** Shows the view the hash names. */
function show() {
  const token = storedToken();
  if (!token) {
    signOut(loginError.textContent ?? "");
    return;
  }
  current?.dispose();
  loginView.hidden = true;
  forget.hidden = false;
  const hash = location.hash.replace(/^#/, "") || "/";
  const stream = /^\/streams\/([^/?#]+)$/.exec(hash);
  const session = api(token);
  if (stream?.[1] !== undefined) {
    streamsView.hidden = true;
    streamView.hidden = false;
    current = mountStreamView(streamView, session, decodeURIComponent(stream[1]));
  } else {
    streamView.hidden = true;
    streamsView.hidden = false;
    current = mountStreamsView(streamsView, session, parseFilters(hash));
  }
}

loginForm.addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) return;
  loginError.textContent = "";
  const button = loginForm.querySelector("button");
  if (button) button.disabled = true;
  try {
    // Any answer but 401 means the token was accepted: a token that may not list
    // streams (403) can still open a stream by its id.
    await new Api(token, () => undefined).get("/streams?limit=1", readStreamsPage);
  } catch (error) {
    if (error instanceof ProblemError && error.status === 401) {
      loginError.textContent = `The server refused this token: ${error.detail || error.title}`;
      tokenInput.select();
      return;
    }
    if (!(error instanceof ProblemError)) {
      loginError.textContent = describeError(error);
      return;
    }
  } finally {
    if (button) button.disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  tokenInput.value = "";
  loginError.textContent = "";
  show();
});

forget.addEventListener("click", () => {
  signOut("The token is forgotten: this tab no longer holds it.");
  location.hash = "#/";
});

window.addEventListener("hashchange", show);
show();
