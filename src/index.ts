import { createApp } from "./http/app";

export { StreamActor } from "./actor/stream-actor";
export { WatcherQuota } from "./actor/watcher-quota";
export { FeedActor } from "./feed/feed-actor";
export { SubscriptionActor } from "./subscriptions/subscription-actor";

export default createApp();
