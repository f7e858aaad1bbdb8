import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

// The local servers in front of the database (the WebSocket bridge, and any other that
// speaks the driver's protocols) run SQL as the database's user for whoever reaches them,
// so they serve only this project's own tools:
//   * no browser: a browser sends Origin with every WebSocket upgrade and every
//     cross-origin POST, and Sec-Fetch-Site and Sec-Fetch-Dest with every request, so a
//     page open in the developer's browser (https://evil.example) is refused whatever it
//     tries. (Node's own fetch sends Sec-Fetch-Mode: cors, and nothing else of these:
//     that header alone does not make a browser.)
//   * this machine as the Host, so a DNS-rebound name cannot pass for it;
//   * the secret path of this run, which only DATABASE_WS_PROXY (and the like) carries.

const LOCAL_HOST_NAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Why a request to a local database server is refused (its HTTP status and reason); undefined when it may go through. */
export function localToolRefusal(
  request: IncomingMessage,
  secretPath: string,
  boundHost: string,
): { status: 403 | 404; reason: string } | undefined {
  const fromBrowser =
    request.headers.origin !== undefined ||
    request.headers["sec-fetch-site"] !== undefined ||
    request.headers["sec-fetch-dest"] !== undefined;
  if (fromBrowser) return { status: 403, reason: "Forbidden" };
  const hostName = (request.headers.host ?? "").replace(/:\d+$/, "");
  if (!LOCAL_HOST_NAMES.has(hostName) && hostName !== boundHost) return { status: 403, reason: "Forbidden" };
  const asked = Buffer.from(new URL(request.url ?? "/", "http://local").pathname);
  const secret = Buffer.from(secretPath);
  if (asked.length !== secret.length || !timingSafeEqual(asked, secret))
    return { status: 404, reason: "Not Found" };
  return undefined;
}
