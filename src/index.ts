import { createApp } from "./http/app";

export { StreamActor } from "./actor/stream-actor";
export { FeedActor } from "./feed/feed-actor";

export default createApp();
