/**
 * The stream types a feed reader gets: those it asked for (undefined: all), within those
 * its token allows (undefined: no limit). A token limited to types reads only those
 * types even when it asks for none; asking for a type it does not cover is refused,
 * never silently dropped. (A token limited to particular streams reads no feed: the
 * feed's routes span many streams, as listing does.)
 */
export function feedStreamTypes(
  allowed: readonly string[] | undefined,
  requested: readonly string[] | undefined,
): { ok: true; streamTypes: readonly string[] | undefined } | { ok: false; message: string } {
  if (allowed === undefined) return { ok: true, streamTypes: requested };
  if (requested === undefined) return { ok: true, streamTypes: allowed };
  const outside = requested.filter((type) => !allowed.includes(type));
  if (outside.length === 0) return { ok: true, streamTypes: requested };
  return {
    ok: false,
    message: `This token may only read streams of type ${allowed.join(", ")}, not ${outside.join(", ")}; ask for those types (stream_type=${allowed.join(",")}) or leave stream_type out.`,
  };
}
