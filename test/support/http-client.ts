import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import type { z } from "zod";
import type { StoredEvent } from "../../src/events/types";
import type { JsonValue } from "../../src/events/wire";
import type {
  AppendResponse,
  HealthResponse,
  StateResponse,
  StreamHeadResponse,
  StreamsPage,
} from "../../src/http/schemas";
import { adminAuthorization } from "./test-tokens";

// Real HTTP requests into the Worker under test (its default export, inside workerd),
// and the assertions every API test repeats: status, content type, problem documents.

export const BASE_URL = "http://example.com";

export type AppendResult = z.output<typeof AppendResponse>;
export type StreamHead = z.output<typeof StreamHeadResponse>;
export type StateResult = z.output<typeof StateResponse>;
export type StreamsPageResult = z.output<typeof StreamsPage>;
export type HealthResult = z.output<typeof HealthResponse>;

/** A page of events as the API sends it. */
export interface EventsPageResult {
  stream_id: string;
  events: StoredEvent[];
  next: string | null;
}

/** An RFC 9457 problem document as the API sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [extension: string]: unknown;
}

/** One event of an append body; `event` is left open so tests can send wrong shapes. */
export interface AppendItem {
  event: { type: string; [field: string]: unknown };
  event_id?: string;
  metadata?: JsonValue;
}

export interface AppendBody {
  events: AppendItem[];
  expected_version?: "any" | "no_stream" | "stream_exists" | number;
  stream_type?: string;
  /** The condition on the state (StateCondition); left open so tests can send wrong shapes. */
  if?: Record<string, unknown>;
  /** The turn a 409 gave, sent back with the retry. */
  turn?: string;
}

/**
 * A request to the Worker (SELF: exactly as configured, with the test AUTH_TOKENS);
 * `path` starts with "/". It carries the admin test token unless `authorization` is set.
 */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", adminAuthorization.authorization);
  return SELF.fetch(`${BASE_URL}${path}`, { ...init, headers });
}

/**
 * POST /streams/:streamId/events. An object body is sent as JSON, a string body as is
 * (for malformed JSON); the content type is application/json unless `headers` says otherwise.
 */
export function appendEvents(
  streamId: string,
  body: AppendBody | Record<string, unknown> | string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return api(`/streams/${streamId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** Reads a JSON response, asserting its status (the body is shown when it differs). */
export async function expectJson<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, `${response.status} ${text}`).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  return JSON.parse(text) as T;
}

/** GET a path and read its JSON body, asserting the status (200 by default). */
export async function getJson<T>(
  path: string,
  status = 200,
  headers: Record<string, string> = {},
): Promise<T> {
  return expectJson<T>(await api(path, { headers }), status);
}

/** Appends and asserts 201 Created; returns the body. */
export async function appendOk(
  streamId: string,
  body: AppendBody,
  headers: Record<string, string> = {},
): Promise<AppendResult> {
  return expectJson<AppendResult>(await appendEvents(streamId, body, headers), 201);
}

/** Appends the events (as bare events) in order, one append per batch; returns the last result. */
export async function appendBatches(
  streamId: string,
  batches: ReadonlyArray<ReadonlyArray<AppendItem["event"]>>,
): Promise<AppendResult | undefined> {
  let last: AppendResult | undefined;
  for (const batch of batches) {
    const expected = last?.version ?? 0;
    last = await appendOk(streamId, {
      events: batch.map((event) => ({ event })),
      expected_version: expected,
    });
    expect(last.version).toBe(expected + batch.length);
  }
  return last;
}

/**
 * Asserts a problem response: the status, application/problem+json, and a body with
 * type, title, status and detail (matching `detail` when given). Returns the body.
 */
export async function expectProblem(response: Response, status: number, detail?: RegExp): Promise<Problem> {
  const text = await response.text();
  expect(response.status, `${response.status} ${text}`).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = JSON.parse(text) as Problem;
  expect(body.status).toBe(status);
  expect(body.type).toMatch(/^urn:glyph-streams:problem:[a-z_]+$/);
  expect(typeof body.title).toBe("string");
  expect(body.title.length).toBeGreaterThan(0);
  expect(typeof body.detail).toBe("string");
  expect(body.detail.length).toBeGreaterThan(0);
  if (detail !== undefined) expect(body.detail).toMatch(detail);
  return body;
}

/** The problem's code: the last segment of its type URI. */
export function problemCode(problem: Problem): string {
  return problem.type.slice(problem.type.lastIndexOf(":") + 1);
}

/** Asserts that nothing was ever written to the stream: its head is a 404 problem and it has no events. */
export async function expectNoStream(streamId: string): Promise<void> {
  const problem = await expectProblem(await api(`/streams/${streamId}`), 404);
  expect(problemCode(problem)).toBe("stream_not_found");
  const page = await getJson<EventsPageResult>(`/streams/${streamId}/events`);
  expect(page.events).toEqual([]);
}

/** Asserts the stream's head is at `version` and returns the head. */
export async function expectVersion(streamId: string, version: number): Promise<StreamHead> {
  const head = await getJson<StreamHead>(`/streams/${streamId}`);
  expect(head.version).toBe(version);
  return head;
}
