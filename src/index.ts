import { createApp } from "./http/app";
import { inspectorAsset, isInspectorRequest } from "./http/inspector-assets";

export { StreamActor } from "./actor/stream-actor";
export { WatcherQuota } from "./actor/watcher-quota";
export { FeedActor } from "./feed/feed-actor";
export { SubscriptionActor } from "./subscriptions/subscription-actor";

const app = createApp();

/** The inspector's files when a request names one (the Worker runs first: wrangler.toml), else the API. */
async function fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  if (isInspectorRequest(request)) {
    const asset = await inspectorAsset(request, env.ASSETS);
    if (asset !== undefined) return asset;
  }
  return app.fetch(request, env, ctx);
}

export default { fetch };
