/**
 * Who sent a request, as `trust_proxy` lets the gateway believe it: the client's address, the
 * scheme and host it asked for, and whether the request's own peer is a trusted proxy (so that
 * its forwarding headers count at all). One meaning for every consumer: the request log,
 * the proxy's `X-Forwarded-*` towards upstreams, /verify, host routing and, through fastify's
 * `request.ip` (built on the same trust function), the login brake.
 *
 * Only one header family is read: `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`
 * (and, in /verify, `X-Forwarded-Uri` and `X-Forwarded-Method`). `Forwarded` (RFC 7239),
 * `X-Real-IP` and the like are never read. The address walks `X-Forwarded-For` from the peer
 * outwards while each hop is trusted, and stops at the first that is not: a client behind an
 * untrusted hop cannot choose its address, whatever it writes into the header.
 *
 * The peer's address is captured when the request arrives (src/http/server.ts): once the
 * response is done Node may have let go of the socket, and a log line written then must not
 * need it. The rest is worked out on first use and kept on the request.
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import proxyAddr from "@fastify/proxy-addr";
import type { TrustProxy } from "../config/schema.js";

/** fastify's `trustProxy` function shape: may the hop at `address`, `hop` steps from us, be believed? */
export type TrustFunction = (address: string, hop: number) => boolean;

/**
 * `trust_proxy` as one function. `true`: every hop. A number n: the n nearest hops, whatever
 * their address (only for a gateway nothing reaches except through those proxies). A list of
 * addresses and CIDRs (or proxy-addr's names `loopback`, `linklocal`, `uniquelocal`): the hops
 * with those addresses. `false`: none (undefined here).
 */
export function compileTrust(setting: TrustProxy): TrustFunction | undefined {
  if (setting === false || setting === 0) return undefined;
  if (setting === true) return () => true;
  if (typeof setting === "number") return (_address, hop) => hop < setting;
  return proxyAddr.compile(setting);
}

const PEER = Symbol("mcpgw.peer");
const CLIENT = Symbol("mcpgw.client");

interface Tagged extends IncomingMessage {
  [PEER]?: string;
  [CLIENT]?: ClientView;
}

/** What the gateway believes about the client of one request. */
export interface ClientView {
  /** The client's address: the socket peer, or the nearest untrusted hop of X-Forwarded-For. */
  ip: string;
  /** `https` or `http`: X-Forwarded-Proto from a trusted peer, else the socket's own. */
  proto: string;
  /** The host the client asked for: X-Forwarded-Host from a trusted peer, else Host. */
  host: string | undefined;
  /** Whether the request's own peer is a trusted proxy: its forwarding headers count. */
  viaTrustedProxy: boolean;
}

/** The last entry of a header a proxy chain may have appended to (the nearest proxy's word). */
function lastEntry(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[value.length - 1] : value;
  if (v === undefined) return undefined;
  const comma = v.lastIndexOf(",");
  return (comma < 0 ? v : v.slice(comma + 1)).trim() || undefined;
}

export class ClientAddresses {
  /** The compiled `trust_proxy`, also what fastify is given, so `request.ip` agrees with this. */
  readonly trust: TrustFunction | undefined;

  constructor(setting: TrustProxy) {
    this.trust = compileTrust(setting);
  }

  /** Called for every request as it arrives, before anything answers it. */
  arrived(req: IncomingMessage): void {
    (req as Tagged)[PEER] = req.socket.remoteAddress ?? "";
  }

  /** The view of `req`'s client, worked out once. */
  of(req: IncomingMessage): ClientView {
    const tagged = req as Tagged;
    let view = tagged[CLIENT];
    if (!view) {
      view = this.compute(tagged);
      tagged[CLIENT] = view;
    }
    return view;
  }

  private compute(req: Tagged): ClientView {
    const peer = req[PEER] ?? req.socket?.remoteAddress ?? "";
    const { headers } = req;
    const trusted = this.trust !== undefined && peer !== "" && this.trust(peer, 0);
    const ownProto = (req.socket as TLSSocket | null)?.encrypted ? "https" : "http";
    if (!trusted) return { ip: peer, proto: ownProto, host: headers.host, viaTrustedProxy: false };
    // proxy-addr reads the peer from the socket; give it the one captured at arrival.
    const chain = proxyAddr.all(
      { headers, socket: { remoteAddress: peer } } as unknown as IncomingMessage,
      this.trust,
    );
    const forwardedProto = lastEntry(headers["x-forwarded-proto"])?.toLowerCase();
    return {
      ip: chain[chain.length - 1] ?? peer,
      proto: forwardedProto === "https" || forwardedProto === "http" ? forwardedProto : ownProto,
      host: lastEntry(headers["x-forwarded-host"]) ?? headers.host,
      viaTrustedProxy: true,
    };
  }
}
