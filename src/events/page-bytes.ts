// A bound in bytes on the events one statement returns. Over HTTP a response is at most
// 10 MiB (Neon's limit, and the local endpoint's), and an event may be almost 1 MiB (an
// append body's limit), so a page of many large events would fail every time it is read:
// a stream could never be loaded again. Every read of events is cut where the JSON of its
// events and metadata passes PAGE_BYTES, after at least one event; the readers go on from
// where a page ended. JSON text can grow when the response quotes it, hence the margin.

/** Most bytes of event and metadata JSON one statement returns (one event more when the first alone is larger). */
export const PAGE_BYTES = 4 * 1024 * 1024;

/**
 * `rows` (a query of workflow_events rows with `version`, `event` and `metadata`, in
 * version `order`) cut where the bytes of the rows before one reach `budget` (a
 * parameter, such as `$4`): the first row always stays. Each row gets `fetched`, the
 * number of rows before the cut, so a reader knows whether the page was cut short.
 * Ordered again by version in `order`.
 */
export function withinPageBytes(rows: string, order: "ASC" | "DESC", budget: string): string {
  return `SELECT * FROM (
      SELECT r.*, sum(r.bytes) OVER (ORDER BY r.version ${order}) - r.bytes AS bytes_before,
             count(*) OVER () AS fetched
        FROM (SELECT x.*, octet_length(x.event::text) + octet_length(x.metadata::text) AS bytes
                FROM (${rows}) x) r
    ) page
    WHERE page.bytes_before < ${budget}
    ORDER BY page.version ${order}`;
}
