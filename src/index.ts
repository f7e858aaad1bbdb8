import { createApp } from "./http/app";

export { StreamActor } from "./actor/stream-actor";

export default createApp();
