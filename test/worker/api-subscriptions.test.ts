import { describe, expect, it } from "vitest";
import { api, expectJson, expectProblem, problemCode } from "../support/http-client";
import { TEST_TOKENS } from "../support/test-tokens";

// The subscription routes through real HTTP requests into the Worker: create, change,
// read, list, pause, resume, replay, delete, and bad input answered with a problem that
// changes nothing. (Delivery is tested end to end: test/e2e/subscriptions.test.ts.)

/** Nothing listens on the discard port: deliveries made during these tests fail at once. */
const URL_NOBODY_HEARS = "http://127.0.0.1:9/hooks";
const freshName = () => `api-${crypto.randomUUID().slice(0, 8)}`;

function send(method: string, path: string, body?: unknown, token: string = TEST_TOKENS.admin) {
  return api(path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
}

interface Status {
  name: string;
  url: string;
  status: string;
  checkpoint: string;
  batch_size: number;
  event_types: string[] | null;
  stream_types: string[] | null;
  secret?: string;
  lag: { events: number; seconds: number };
}

describe("subscriptions", () => {
  it("are made once with a secret, changed by a second PUT without one, listed, paused, resumed and deleted", async () => {
    const name = freshName();
    const created = await expectJson<Status>(
      await send("PUT", `/subscriptions/${name}`, {
        url: URL_NOBODY_HEARS,
        stream_types: ["billing"],
        from: "now",
      }),
      201,
    );
    expect(created).toMatchObject({
      name,
      url: URL_NOBODY_HEARS,
      stream_types: ["billing"],
      event_types: null,
      batch_size: 1,
    });
    expect(created.secret).toMatch(/^whsec_/);
    const changed = await expectJson<Status>(
      await send("PUT", `/subscriptions/${name}`, {
        url: `${URL_NOBODY_HEARS}/v2`,
        event_types: ["workflow_completed"],
        batch_size: 10,
      }),
      200,
    );
    expect(changed).toMatchObject({
      url: `${URL_NOBODY_HEARS}/v2`,
      event_types: ["workflow_completed"],
      stream_types: null,
      batch_size: 10,
    });
    expect(changed.secret).toBeUndefined();
    expect(changed.checkpoint).toBe(created.checkpoint);

    const list = await expectJson<{ subscriptions: Status[] }>(await send("GET", "/subscriptions"), 200);
    expect(list.subscriptions.map((s) => s.name)).toContain(name);
    expect((await expectJson<Status>(await send("POST", `/subscriptions/${name}/pause`), 200)).status).toBe(
      "paused",
    );
    expect((await expectJson<Status>(await send("GET", `/subscriptions/${name}`), 200)).status).toBe(
      "paused",
    );
    expect(
      (await expectJson<Status>(await send("POST", `/subscriptions/${name}/resume`), 200)).status,
    ).not.toBe("paused");
    const replayed = await expectJson<Status>(
      await send("POST", `/subscriptions/${name}/replay`, { from: "start" }),
      200,
    );
    expect(replayed.checkpoint).toBe("MC4w");
    expect((await send("DELETE", `/subscriptions/${name}`)).status).toBe(204);
    await expectProblem(await send("GET", `/subscriptions/${name}`), 404);
  });

  it("answer an unknown subscription 404 on every route that names one", async () => {
    const name = freshName();
    const cases: Array<[string, string, unknown?]> = [
      ["GET", `/subscriptions/${name}`],
      ["DELETE", `/subscriptions/${name}`],
      ["POST", `/subscriptions/${name}/pause`],
      ["POST", `/subscriptions/${name}/resume`],
      ["POST", `/subscriptions/${name}/replay`, { from: "start" }],
      ["GET", `/subscriptions/${name}/dead-letters`],
      ["POST", `/subscriptions/${name}/dead-letters/redrive`, {}],
    ];
    for (const [method, path, body] of cases) {
      const problem = await expectProblem(
        await send(method, path, body),
        404,
        new RegExp(`no subscription ${name}`),
      );
      expect(problemCode(problem), `${method} ${path}`).toBe("subscription_not_found");
    }
  });

  it("refuse bad input with a problem that names what to fix, and change nothing", async () => {
    const name = freshName();
    const bad: Array<[unknown, RegExp]> = [
      [{ url: "ftp://example.com/x" }, /url: the scheme ftp/],
      [{ url: "not a url" }, /url: not a URL/],
      [{ url: "https://user:pw@example.com/" }, /url: the URL carries credentials/],
      [{}, /url/],
      [{ url: URL_NOBODY_HEARS, from: "yesterday" }, /from/],
      [{ url: URL_NOBODY_HEARS, event_types: ["step_exploded"] }, /event_types/],
      [{ url: URL_NOBODY_HEARS, event_types: [] }, /event_types/],
      [{ url: URL_NOBODY_HEARS, stream_types: ["no spaces"] }, /stream_types/],
      [{ url: URL_NOBODY_HEARS, batch_size: 0 }, /batch_size/],
      [{ url: URL_NOBODY_HEARS, batch_size: 101 }, /batch_size/],
      [{ url: URL_NOBODY_HEARS, secret: "whsec_mine" }, /secret/],
    ];
    for (const [body, detail] of bad) {
      const problem = await expectProblem(await send("PUT", `/subscriptions/${name}`, body), 400, detail);
      expect(problemCode(problem), JSON.stringify(body)).toBe("invalid_request");
    }
    await expectProblem(await send("PUT", `/subscriptions/${name}`, "{"), 400);
    await expectProblem(
      await send("PUT", "/subscriptions/Not_Lower", { url: URL_NOBODY_HEARS }),
      400,
      /name/,
    );
    const text = await api(`/subscriptions/${name}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TEST_TOKENS.admin}`, "content-type": "text/plain" },
      body: "{}",
    });
    await expectProblem(text, 415);
    await expectProblem(await send("GET", `/subscriptions/${name}`), 404);

    // An existing subscription is left as it was by a bad change, a bad replay or a bad re-drive.
    const created = await expectJson<Status>(
      await send("PUT", `/subscriptions/${name}`, { url: URL_NOBODY_HEARS }),
      201,
    );
    await expectProblem(await send("PUT", `/subscriptions/${name}`, { url: "gopher://example.com/" }), 400);
    await expectProblem(
      await send("POST", `/subscriptions/${name}/replay`, { from: "garbage" }),
      400,
      /from/,
    );
    await expectProblem(await send("POST", `/subscriptions/${name}/replay`, {}), 400, /from/);
    await expectProblem(
      await send("POST", `/subscriptions/${name}/dead-letters/redrive`, { ids: [0] }),
      400,
      /ids/,
    );
    await expectProblem(await send("GET", `/subscriptions/${name}/dead-letters?limit=0`), 400, /limit/);
    const after = await expectJson<Status>(await send("GET", `/subscriptions/${name}`), 200);
    expect(after).toMatchObject({ url: created.url, checkpoint: created.checkpoint, batch_size: 1 });
    await send("DELETE", `/subscriptions/${name}`);
  });

  it("are for admin tokens only", async () => {
    const refused = await expectProblem(
      await send("GET", "/subscriptions", undefined, TEST_TOKENS.reader),
      403,
      /admin scope/,
    );
    expect(problemCode(refused)).toBe("forbidden");
  });
});
