/**
 * The inspector's files (public/inspect, decision 34) come from the ASSETS binding; the
 * Worker runs first (wrangler.toml's run_worker_first) so that API requests skip the
 * asset lookup. A miss is left to the API, which answers it as any unknown path.
 */
export function isInspectorRequest(request: Request): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  // Every request passes here: the path is found in the URL's text, not by parsing it.
  const { url } = request;
  const path = url.indexOf("/", url.indexOf("//") + 2);
  if (path < 0 || !url.startsWith("/inspect", path)) return false;
  const after = url.charAt(path + "/inspect".length);
  return after === "" || after === "/" || after === "?" || after === "#";
}

export async function inspectorAsset(request: Request, assets: Fetcher): Promise<Response | undefined> {
  const response = await assets.fetch(request);
  if (response.status !== 404) return response;
  await response.body?.cancel();
  return undefined;
}
