/**
 * The inspector's files (public/inspect, decision 34) come from the ASSETS binding; the
 * Worker runs first (wrangler.toml's run_worker_first) so that API requests skip the
 * asset lookup. A miss is left to the API, which answers it as any unknown path.
 */
export function isInspectorRequest(request: Request): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  const { pathname } = new URL(request.url);
  return pathname === "/inspect" || pathname.startsWith("/inspect/");
}

export async function inspectorAsset(request: Request, assets: Fetcher): Promise<Response | undefined> {
  const response = await assets.fetch(request);
  if (response.status !== 404) return response;
  await response.body?.cancel();
  return undefined;
}
