import { z } from "zod";
import { StoredEvent } from "../events/types";

/** An event of the global feed: the stored event as per-stream reads return it, and its place in the feed. */
export const FeedEvent = StoredEvent.extend({
  checkpoint: z.string().meta({
    description: "Where this event is in the feed; pass it as `after` to continue behind it.",
  }),
});
export type FeedEvent = z.output<typeof FeedEvent>;
