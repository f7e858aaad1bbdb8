/** Largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Most events one append may carry. */
export const MAX_EVENTS_PER_APPEND = 500;
/** Largest metadata of one event, in bytes of JSON. */
export const MAX_METADATA_BYTES = 16 * 1024;
/** Default and largest page of events or streams. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/**
 * Stream listings one isolate runs against the database at once, and how many more may
 * wait for a turn (DATABASE_TIMEOUT_MS at most); beyond that a listing is answered 503
 * busy. Each listing holds a database session while it runs.
 */
export const MAX_CONCURRENT_LISTINGS = 4;
export const MAX_WAITING_LISTINGS = 16;
