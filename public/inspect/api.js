// @ts-check
import { ProtocolError, WATCH_PROTOCOL } from "./checks.js";

// The inspector's one way to the API: the same origin that served the page, the token
// in the Authorization header (and, for a WebSocket, which cannot carry headers, in the
// subprotocol bearer.<token>), never in a URL. A 401 anywhere ends the session: the
// app shows the token form with the server's words.

/** A refusal, from the problem+json the API answers with (src/http/problem.ts). */
export class ProblemError extends Error {
  /** @param {number} status @param {string} title @param {string} detail */
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = "ProblemError";
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

/**
 * Says what went wrong in plain words: the problem's title and detail, or the error's message.
 * @param {unknown} error
 */
export function describeError(error) {
  if (error instanceof ProblemError || error instanceof ProtocolError) return error.message;
  if (error instanceof TypeError) return "The server could not be reached; check the connection and reload.";
  return error instanceof Error ? error.message : String(error);
}

/** @param {Response} response */
async function problemFrom(response) {
  /** @type {unknown} */
  let body;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const fields =
    typeof body === "object" && body !== null ? /** @type {Record<string, unknown>} */ (body) : {};
  const title = typeof fields.title === "string" ? fields.title : `The server answered ${response.status}`;
  const detail = typeof fields.detail === "string" ? fields.detail : "";
  return new ProblemError(response.status, title, detail);
}

/** Backoff between reconnections: 1 s doubling to 30 s, with jitter. @param {number} attempt */
function backoff(attempt) {
  const ceiling = Math.min(30_000, 1_000 * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** A watcher refused for a cap (src/actor/watch-messages.ts, TOO_MANY_WATCHERS): wait before trying again. */
const TOO_MANY_WATCHERS = 4429;
const TOO_MANY_WATCHERS_WAIT_MS = 30_000;
/** Keep-alive: the runtime answers it without waking the actor; idle sockets are closed by proxies. */
const PING_EVERY_MS = 30_000;
const PING_FRAME = '{"type":"ping"}';

/**
 * @typedef {"connecting" | "live" | "reconnecting" | "stopped"} SocketState
 * @typedef {{
 *   path: () => string,
 *   onFrame: (data: unknown) => void,
 *   onState: (state: SocketState, detail: string) => void,
 *   probe: () => Promise<unknown>,
 * }} FollowOptions
 */

export class Api {
  /**
   * @param {string} token
   * @param {(error: ProblemError) => void} onUnauthorized  called once per 401, then the error is thrown as well
   */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  /**
   * GETs a path of the API and returns its JSON, read by `read`.
   * @template T
   * @param {string} path
   * @param {(value: unknown) => T} read
   * @param {AbortSignal} [signal]
   * @returns {Promise<T>}
   */
  async get(path, read, signal) {
    const response = await fetch(path, {
      headers: { authorization: `Bearer ${this.token}`, accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      ...(signal ? { signal } : {}),
    });
    if (!response.ok) {
      const problem = await problemFrom(response);
      if (problem.status === 401) this.onUnauthorized(problem);
      throw problem;
    }
    /** @type {unknown} */
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ProtocolError("a body that is not JSON");
    }
    return read(body);
  }

  /**
   * Follows a watch socket: opens it at `path()` (asked again before every reconnection,
   * so it can resume from the last position), keeps it alive with pings and reconnects
   * with backoff until closed. A socket that never opened is followed by `probe()`, a
   * plain request that says why (a 401 ends the session; others are shown).
   * @param {FollowOptions} options
   */
  follow(options) {
    /** @type {WebSocket | undefined} */
    let socket;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let retry;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    let ping;
    let attempt = 0;
    let stopped = false;

    const stop = (/** @type {string} */ why) => {
      stopped = true;
      clearTimeout(retry);
      clearInterval(ping);
      options.onState("stopped", why);
    };

    const open = () => {
      const url = new URL(options.path(), location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      // A reconnection keeps the state its close set ("reconnecting", and why).
      if (attempt === 0) options.onState("connecting", "");
      let opened = false;
      try {
        socket = new WebSocket(url, [WATCH_PROTOCOL, `bearer.${this.token}`]);
      } catch {
        stop("This token cannot be sent over a WebSocket (it is not a valid subprotocol).");
        return;
      }
      const current = socket;
      current.onopen = () => {
        opened = true;
        attempt = 0;
        options.onState("live", "");
        ping = setInterval(() => {
          if (current.readyState === WebSocket.OPEN) current.send(PING_FRAME);
        }, PING_EVERY_MS);
      };
      current.onmessage = (message) => {
        try {
          options.onFrame(message.data);
        } catch (error) {
          current.close(1000);
          stop(describeError(error));
        }
      };
      current.onclose = async (close) => {
        clearInterval(ping);
        if (stopped || current !== socket) return;
        if (close.code === 1008) {
          stop(close.reason || "The token does not cover this stream.");
          return;
        }
        if (!opened) {
          try {
            await options.probe();
          } catch (error) {
            if (error instanceof ProblemError && error.status < 500 && error.status !== 429) {
              stop(describeError(error));
              return;
            }
          }
          if (stopped) return;
        }
        const wait = close.code === TOO_MANY_WATCHERS ? TOO_MANY_WATCHERS_WAIT_MS : backoff(attempt);
        attempt += 1;
        const why = close.reason ? `${close.reason}; ` : "";
        options.onState("reconnecting", `${why}trying again in ${Math.round(wait / 1000)} s`);
        retry = setTimeout(open, wait);
      };
    };

    open();
    return {
      close: () => {
        stopped = true;
        clearTimeout(retry);
        clearInterval(ping);
        socket?.close(1000);
      },
    };
  }
}
