import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioTransportV2 } from "@modelcontextprotocol/client/stdio";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { InMemoryTransport } from "@modelcontextprotocol/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forbiddenAddressReason, systemResolver } from "../../src/net/ssrf.js";
import { nativeServiceCommand } from "../../src/services/catalog.js";
import { createPageFetcher, type PageFetcherOptions } from "../../src/services/fetch-page.js";
import { createFetchServer, pageOf } from "../../src/services/fetch-server.js";

const paragraphs = Array.from(
  { length: 40 },
  (_, i) => `<p>Paragraph number ${i} of the test page.</p>`,
).join("");
const PAGE = `<!doctype html><html><head><title>T</title><style>body{color:red}</style></head>
<body><h1>Test Page</h1><script>alert("no")</script><ul><li>one</li><li>two</li></ul>
<p>A <a href="/x">link</a> and <strong>bold</strong>.</p>${paragraphs}</body></html>`;

let server: Server;
let origin: string;
let port: number;
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? "");
    if (req.url === "/robots.txt") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("User-agent: *\nDisallow: /private\n");
    } else if (req.url === "/page") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
    } else if (req.url === "/data.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"answer":42}');
    } else if (req.url === "/to-loopback") {
      res.writeHead(302, { location: `http://localhost:${port}/page` });
      res.end();
    } else if (req.url === "/to-metadata") {
      res.writeHead(301, { location: "http://169.254.169.254/latest/meta-data/" });
      res.end();
    } else if (req.url === "/loop") {
      res.writeHead(302, { location: "/loop" });
      res.end();
    } else {
      res.writeHead(404).end("missing");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** What the tests call, the same in both SDKs. */
type FetchClient = Pick<Client, "callTool" | "close">;

/** The server in this process (SDK v2 on both sides); close() also closes the fetcher's pools. */
async function inProcessClient(opts: PageFetcherOptions): Promise<FetchClient> {
  const fetcher = createPageFetcher(opts);
  const mcp = createFetchServer(fetcher);
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await mcp.connect(serverSide);
  const client = new ClientV2({ name: "fetch-test", version: "1.0.0" });
  await client.connect(clientSide);
  return {
    callTool: client.callTool.bind(client) as unknown as FetchClient["callTool"],
    close: async () => {
      await client.close();
      await mcp.close();
      await fetcher.close();
    },
  };
}

function text(result: unknown): string {
  return ((result as CallToolResult).content[0] as { text: string }).text;
}

async function call(client: FetchClient, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name: "fetch", arguments: args })) as CallToolResult;
}

describe("fetch tool with private addresses allowed (local test server)", () => {
  let client: FetchClient;
  beforeAll(async () => {
    client = await inProcessClient({ allowPrivate: true });
  });
  afterAll(async () => {
    await client.close();
  });

  it("converts HTML to markdown and pages through it", async () => {
    const first = await call(client, { url: `${origin}/page`, max_length: 300 });
    expect(first.isError).toBeFalsy();
    const body = text(first);
    expect(body.startsWith(`Contents of ${origin}/page:\n# Test Page`)).toBe(true);
    expect(body).toMatch(/^-\s+one$/m);
    expect(body).toContain("[link](/x)");
    expect(body).toContain("**bold**");
    expect(body).not.toContain("alert");
    expect(body).not.toContain("color:red");
    expect(body).toContain("Call the fetch tool with a start_index of 300 to get more content.");

    const second = text(await call(client, { url: `${origin}/page`, max_length: 300, start_index: 300 }));
    const whole = text(await call(client, { url: `${origin}/page`, max_length: 100_000 }));
    const markdown = whole.slice(`Contents of ${origin}/page:\n`.length);
    expect(second).toContain(markdown.slice(300, 600));
    expect(whole).not.toContain("Content truncated");
    expect(text(await call(client, { url: `${origin}/page`, start_index: 100_000 }))).toContain(
      "<error>No more content available.</error>",
    );
  });

  it("returns raw content on request, and non-HTML as raw with a note", async () => {
    expect(text(await call(client, { url: `${origin}/page`, raw: true }))).toContain("<h1>Test Page</h1>");
    const json = text(await call(client, { url: `${origin}/data.json` }));
    expect(json).toContain("Content type application/json cannot be simplified to markdown");
    expect(json).toContain('{"answer":42}');
  });

  it("respects robots.txt and reports HTTP errors and redirect loops", async () => {
    const denied = await call(client, { url: `${origin}/private/secret` });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toContain("robots.txt");
    expect(text(denied)).toContain("<useragent>mcp-oauth-gateway-fetch</useragent>");
    expect(hits).not.toContain("/private/secret");
    const missing = await call(client, { url: `${origin}/nothing-here` });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toContain("status code 404");
    const loop = await call(client, { url: `${origin}/loop` });
    expect(loop.isError).toBe(true);
    expect(text(loop)).toContain("Too many redirects");
  });
});

describe("fetch tool SSRF protection (private addresses not allowed)", () => {
  let client: FetchClient;
  beforeAll(async () => {
    client = await inProcessClient({
      allowPrivate: false,
      // The test server stands in for a public site; nothing else on loopback is exempt.
      exemptOrigins: [origin],
      resolve: async (host) => {
        if (host === "internal.example") return [{ address: "10.1.2.3", family: 4 }];
        if (host === "mixed.example")
          return [
            { address: "93.184.216.34", family: 4 },
            { address: "fd00:ec2::254", family: 6 },
          ];
        return systemResolver(host);
      },
    });
  });
  afterAll(async () => {
    await client.close();
  });

  const refused = [
    ["loopback literal", "http://127.0.0.1:1/", /127\.0\.0\.1: loopback/],
    ["metadata address", "http://169.254.169.254/latest/meta-data/", /169\.254\.169\.254: link-local/],
    ["IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]/", /loopback/],
    ["IPv6 loopback", "http://[::1]/", /::1: loopback/],
    [
      "name resolving to a private address",
      "http://internal.example/",
      /internal\.example: it resolves to private address 10\.1\.2\.3/,
    ],
    ["name with one private address among public ones", "http://mixed.example/", /fd00:ec2::254/],
    ["non-http scheme", "file:///etc/passwd", /Only http and https/],
  ] as const;

  for (const [what, url, message] of refused) {
    it(`refuses a ${what}`, async () => {
      const result = await call(client, { url });
      expect(result.isError).toBe(true);
      expect(text(result)).toMatch(message);
    });
  }

  it("refuses a redirect to a loopback name and to the metadata address, without following it", async () => {
    const before = hits.length;
    const toLoopback = await call(client, { url: `${origin}/to-loopback` });
    expect(toLoopback.isError).toBe(true);
    expect(text(toLoopback)).toMatch(/localhost: it resolves to loopback address/);
    const toMetadata = await call(client, { url: `${origin}/to-metadata` });
    expect(toMetadata.isError).toBe(true);
    expect(text(toMetadata)).toMatch(/169\.254\.169\.254: link-local/);
    // Only the exempt origin's own URLs were requested, never the redirect targets.
    expect(hits.slice(before).filter((h) => h === "/page")).toEqual([]);
  });

  it("classifies addresses", () => {
    for (const ip of ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.63.255.255", "172.32.0.1"]) {
      expect(forbiddenAddressReason(ip)).toBeNull();
    }
    for (const ip of [
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "100.64.0.1",
      "100.100.100.200",
      "0.0.0.0",
      "224.0.0.1",
      "fe80::1",
      "fc00::1",
      "::",
      "ff02::1",
      "::ffff:10.0.0.1",
    ]) {
      expect(forbiddenAddressReason(ip)).not.toBeNull();
    }
  });
});

describe("fetch MCP server as a stdio child", () => {
  /** A 2025 session with SDK v1, or stateless 2026-07-28 requests with SDK v2 pinned. */
  async function child(env: Record<string, string>, era: "2025" | "2026" = "2025"): Promise<FetchClient> {
    const { command, args } = nativeServiceCommand("fetch");
    const params = { command, args, env: { PATH: process.env.PATH ?? "", ...env } };
    if (era === "2026") {
      const client = new ClientV2(
        { name: "fetch-child-test", version: "1.0.0" },
        { versionNegotiation: { mode: { pin: "2026-07-28" } } },
      );
      await client.connect(new StdioTransportV2(params));
      expect(client.getProtocolEra()).toBe("modern");
      return client as unknown as FetchClient;
    }
    const client = new Client({ name: "fetch-child-test", version: "1.0.0" });
    await client.connect(new StdioClientTransport(params));
    return client;
  }

  it("refuses localhost by default (real /etc/hosts lookup)", async () => {
    const client = await child({});
    try {
      const result = await call(client, { url: `http://localhost:${port}/page` });
      expect(result.isError).toBe(true);
      expect(text(result)).toMatch(/localhost: it resolves to loopback address/);
    } finally {
      await client.close();
    }
  });

  it("fetches a loopback page when MCP_FETCH_ALLOW_PRIVATE=1, in both eras", async () => {
    for (const era of ["2025", "2026"] as const) {
      const client = await child({ MCP_FETCH_ALLOW_PRIVATE: "1" }, era);
      try {
        const result = await call(client, { url: `http://localhost:${port}/page`, max_length: 50 });
        expect(result.isError).toBeFalsy();
        expect(text(result)).toContain("# Test Page");
        expect(text(result)).toContain("start_index of 50");
      } finally {
        await client.close();
      }
    }
    // Two children started from TypeScript, one after the other: slow on a busy machine.
  }, 60_000);
});

describe("pageOf", () => {
  it("cuts pages and says where the next starts", () => {
    expect(pageOf("abcdef", 0, 4)).toBe(
      "abcd\n\n<error>Content truncated. Call the fetch tool with a start_index of 4 to get more content.</error>",
    );
    expect(pageOf("abcdef", 4, 4)).toBe("ef");
    expect(pageOf("abcdef", 0, 6)).toBe("abcdef");
    expect(pageOf("abcdef", 6, 4)).toBe("<error>No more content available.</error>");
  });
});
