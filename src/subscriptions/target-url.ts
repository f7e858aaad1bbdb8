// Where a subscription may deliver: an http(s) URL without credentials in it, and, unless
// private targets are allowed (SUBSCRIPTION_PRIVATE_TARGETS; by default only outside
// production), not a loopback, private, link-local or otherwise internal address, so a
// subscription cannot be pointed at the infrastructure around the Worker. Names are
// checked as written: a public name that resolves to a private address is not caught
// here (Workers have no DNS lookup); Cloudflare's own egress does not reach private
// networks either.

export const MAX_URL_LENGTH = 2048;

/** Why `text` is not a URL this server delivers to, or undefined when it is. */
export function refuseTarget(text: string, allowPrivate: boolean): string | undefined {
  if (text.length > MAX_URL_LENGTH) return `the URL is longer than ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "not a URL; send an absolute http:// or https:// URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return `the scheme ${url.protocol.replace(/:$/, "")} is not delivered to; use http:// or https://`;
  }
  if (url.username !== "" || url.password !== "") {
    return "the URL carries credentials; deliveries are signed, so the receiver checks the signature instead";
  }
  if (allowPrivate) return undefined;
  const host = url.hostname.toLowerCase();
  if (isInternalHost(host)) {
    return `${host} is a loopback, private, link-local or internal address; this server delivers only to public ones`;
  }
  return undefined;
}

function isInternalHost(host: string): boolean {
  if (host.startsWith("[")) return isInternalIpv6(host.slice(1, -1));
  const ipv4 = parseIpv4(host);
  if (ipv4 !== undefined) return isInternalIpv4(ipv4);
  // A name without a dot is resolved by the local network, as are these special-use domains.
  if (!host.includes(".")) return true;
  return /(^|\.)(localhost|local|internal|intranet|home\.arpa|lan)\.?$/.test(host);
}

function parseIpv4(host: string): number[] | undefined {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part))) return undefined;
  const octets = parts.map(Number);
  return octets.every((octet) => octet <= 255) ? octets : undefined;
}

function isInternalIpv4([a = 0, b = 0]: number[]): boolean {
  return (
    a === 0 || // "this" network
    a === 10 || // private
    a === 127 || // loopback
    (a === 100 && b >= 64 && b <= 127) || // carrier-grade NAT
    (a === 169 && b === 254) || // link-local (cloud metadata services live here)
    (a === 172 && b >= 16 && b <= 31) || // private
    (a === 192 && b === 168) || // private
    (a === 192 && b === 0) || // IETF protocol assignments
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    a >= 224 // multicast and reserved
  );
}

function isInternalIpv6(address: string): boolean {
  // The URL parser has already normalised the address (compressed, lower case).
  if (address === "::" || address === "::1") return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return isInternalIpv4(parseIpv4(mapped[1] ?? "") ?? [0]);
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (hexMapped) {
    const high = Number.parseInt(hexMapped[1] ?? "0", 16);
    return isInternalIpv4([high >> 8, high & 0xff]);
  }
  const first = Number.parseInt(address.split(":")[0] || "0", 16);
  return (
    (first & 0xfe00) === 0xfc00 || // unique local fc00::/7
    (first & 0xffc0) === 0xfe80 || // link-local fe80::/10
    (first & 0xff00) === 0xff00 // multicast
  );
}
