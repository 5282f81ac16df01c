/**
 * SSRF guard for outbound fetches: which IP addresses a server-side fetch must never reach, and a
 * DNS lookup for the HTTP connector that refuses them. Because the connector dials exactly the
 * addresses this lookup returned, a DNS answer cannot change between the check and the connect.
 */
import { promises as dns, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";

/** Why a destination was refused; its message is shown to the tool's caller. */
export class ForbiddenAddressError extends Error {
  readonly code = "ERR_FORBIDDEN_ADDRESS";
}

/** Ranges never fetched, with the reason shown. IPv4-mapped IPv6 addresses match the IPv4 rules. */
const RANGES: Array<[network: string, prefix: number, family: "ipv4" | "ipv6", reason: string]> = [
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared address space (CGNAT)"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.0.0.0", 24, "ipv4", "IETF protocol assignments"],
  ["192.0.2.0", 24, "ipv4", "documentation"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["198.18.0.0", 15, "ipv4", "benchmarking"],
  ["198.51.100.0", 24, "ipv4", "documentation"],
  ["203.0.113.0", 24, "ipv4", "documentation"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  ["64:ff9b::", 96, "ipv6", "NAT64 (may reach internal IPv4)"],
  ["64:ff9b:1::", 48, "ipv6", "NAT64 (may reach internal IPv4)"],
  ["100::", 64, "ipv6", "discard"],
  ["2001:db8::", 32, "ipv6", "documentation"],
  ["2002::", 16, "ipv6", "6to4 (may reach internal IPv4)"],
  ["fc00::", 7, "ipv6", "private (unique local)"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fec0::", 10, "ipv6", "site-local"],
  ["ff00::", 8, "ipv6", "multicast"],
];

const lists = RANGES.map(([network, prefix, family, reason]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return { list, reason };
});

/** The reason `ip` must not be fetched, or null when it is a public unicast address. */
export function forbiddenAddressReason(ip: string): string | null {
  const family = isIP(ip);
  if (family === 0) return "not an IP address";
  const type = family === 4 ? "ipv4" : "ipv6";
  for (const { list, reason } of lists) if (list.check(ip, type)) return reason;
  return null;
}

/** Resolves a host name to every address it has (dns.lookup by default: /etc/hosts, then DNS). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/** Throw ForbiddenAddressError if a literal IP host is refused. Host names are checked at lookup. */
export function assertLiteralHostAllowed(hostname: string): void {
  const bare = hostname.replace(/^\[|\]$/g, "");
  if (isIP(bare) === 0) return;
  const reason = forbiddenAddressReason(bare);
  if (reason) throw new ForbiddenAddressError(`Refusing to fetch ${bare}: ${reason} address`);
}

type LookupCallback = (err: Error | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect / undici's connector: resolves with `resolve`, and fails the
 * connection if any address of the name is refused (an attacker may control the name's DNS).
 */
export function guardedLookup(resolve: Resolver = systemResolver) {
  return (
    hostname: string,
    options: { family?: number | string; all?: boolean },
    callback: LookupCallback,
  ) => {
    resolve(hostname)
      .then((found) => {
        const family =
          options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : Number(options.family) || 0;
        for (const { address } of found) {
          const reason = forbiddenAddressReason(address);
          if (reason)
            throw new ForbiddenAddressError(
              `Refusing to fetch ${hostname}: it resolves to ${reason} address ${address}`,
            );
        }
        const usable = family ? found.filter((a) => a.family === family) : found;
        const first = usable[0];
        if (!first)
          throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
        if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      })
      .catch((err: Error) => callback(err, "", 0));
  };
}
