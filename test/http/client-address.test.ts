/**
 * What `trust_proxy` means, on a real node:http server with real connections from two loopback
 * addresses (127.0.0.1 as "the proxy", 127.0.0.2 as "a client"), and how the config reads it
 * from YAML values and from environment strings.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/load.js";
import type { TrustProxy } from "../../src/config/schema.js";
import { ClientAddresses, type ClientView } from "../../src/http/client-address.js";

let server: Server;
let url: string;
let clients: ClientAddresses;
const from = {
  proxy: new Agent({ localAddress: "127.0.0.1" }),
  client: new Agent({ localAddress: "127.0.0.2" }),
};

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    clients.arrived(req);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(clients.of(req)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await Promise.all([from.proxy.close(), from.client.close()]);
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function seen(
  setting: TrustProxy,
  agent: Agent,
  headers: Record<string, string> = {},
): Promise<ClientView> {
  clients = new ClientAddresses(setting);
  const res = await request(url, { headers, dispatcher: agent });
  return (await res.body.json()) as ClientView;
}

const FORWARDED = {
  "x-forwarded-for": "198.51.100.1, 127.0.0.2",
  "x-forwarded-proto": "https",
  "x-forwarded-host": "mcp.example.com",
};

describe("ClientAddresses", () => {
  it("false: the socket's peer, the Host header, no forwarding header read", async () => {
    const view = await seen(false, from.proxy, FORWARDED);
    expect(view).toMatchObject({ ip: "127.0.0.1", proto: "http", viaTrustedProxy: false });
    expect(view.host).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("an address: the chain is walked while hops are trusted, and stops at the first that is not", async () => {
    // The proxy (trusted) says the request came from 127.0.0.2, which is not trusted: that is
    // the client, whatever 127.0.0.2 claimed about itself before it.
    expect(await seen(["127.0.0.1"], from.proxy, FORWARDED)).toMatchObject({
      ip: "127.0.0.2",
      proto: "https",
      host: "mcp.example.com",
      viaTrustedProxy: true,
    });
    // The same headers from an untrusted peer are not read at all.
    expect(await seen(["127.0.0.1"], from.client, FORWARDED)).toMatchObject({
      ip: "127.0.0.2",
      proto: "http",
      viaTrustedProxy: false,
    });
  });

  it("CIDRs and proxy-addr's names trust whole ranges", async () => {
    for (const setting of [["127.0.0.0/8"], ["loopback"]]) {
      expect(await seen(setting, from.client, FORWARDED)).toMatchObject({
        ip: "198.51.100.1",
        viaTrustedProxy: true,
      });
    }
  });

  it("true trusts every hop; a hop count n the n nearest", async () => {
    expect((await seen(true, from.client, FORWARDED)).ip).toBe("198.51.100.1");
    expect((await seen(1, from.client, FORWARDED)).ip).toBe("127.0.0.2");
    expect((await seen(2, from.client, FORWARDED)).ip).toBe("198.51.100.1");
    expect((await seen(0, from.client, FORWARDED)).viaTrustedProxy).toBe(false);
  });
});

describe("trust_proxy in the config", () => {
  const read = (value: unknown) => validateConfig({ trust_proxy: value }).trust_proxy;

  it("takes booleans, hop counts and address lists, also as environment strings", () => {
    expect(read(true)).toBe(true);
    expect(read("true")).toBe(true);
    expect(read("false")).toBe(false);
    expect(read(2)).toBe(2);
    expect(read("2")).toBe(2);
    expect(read("127.0.0.1")).toEqual(["127.0.0.1"]);
    expect(read("127.0.0.1, 10.0.0.0/8")).toEqual(["127.0.0.1", "10.0.0.0/8"]);
    expect(read(["::1", "loopback"])).toEqual(["::1", "loopback"]);
    expect(read("")).toBe(false);
  });

  it("refuses what is not an address, naming the key", () => {
    expect(() => read("127.0.0.1, proxy.internal")).toThrow(/trust_proxy/);
    expect(() => read(-1)).toThrow(/trust_proxy/);
  });
});
