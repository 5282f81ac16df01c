/**
 * What crosses the built-in proxy on the way up, for a client that lies in every header it can
 * write: identity look-alikes in any case and with `_` for `-`, every forwarding header (the
 * standard one, the de facto ones, CDN ones), hop-by-hop tricks (RFC 9110 §7.6.1), and
 * `Expect`, which curl adds by itself to bodies over 1 MB. The upstream is a real MCP server
 * that records every header it receives; the client is a raw socket (undici refuses to send
 * most of these) and real curl.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkBinary } from "../support/binaries.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { INITIALIZE } from "../support/mcp-http.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";

const CURL = "/usr/bin/curl";

let upstream: TestUpstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    gateway: { identity_headers: { user_id: "X-Remote-User", client_id: "Auth_Client" } },
    services: { echo: { url: upstream.url } },
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

/** One HTTP/1.1 request written byte for byte; resolves with the final status (a 100 is skipped). */
function rawRequest(port: number, head: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`${head.trim().split("\n").join("\r\n")}\r\n\r\n${body}`);
    });
    let seen = "";
    socket.on("data", (chunk) => {
      seen += chunk.toString("latin1");
      const final = [...seen.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1])).find((s) => s >= 200);
      if (final !== undefined) {
        socket.destroy();
        resolve(final);
      }
    });
    socket.on("error", reject);
  });
}

/** Header names as an upstream that is lenient about them would read them. */
const normal = (name: string) => name.toLowerCase().replace(/_/g, "-");

describe("headers on the way up", () => {
  it("a client that forges every identity, forwarding and hop-by-hop variant gets none of them through", async () => {
    const token = await gw.token("echo", { sub: "u-42", client_id: "c-42" });
    const body = JSON.stringify(INITIALIZE);
    const forged = `
POST /echo/mcp HTTP/1.1
Host: 127.0.0.1:${gw.port}
Authorization: Bearer ${token}
Content-Type: application/json
Accept: application/json, text/event-stream
Content-Length: ${Buffer.byteLength(body)}
Connection: keep-alive, X-Hop-Secret, x_hop_other
X-Hop-Secret: 1
X-Hop-Other: 1
Keep-Alive: timeout=5
Proxy-Connection: keep-alive
TE: trailers
Upgrade: h2c
X-Remote-User: forged
X_Remote_User: forged
x-remote_user: forged
Auth_Client: forged
Auth-Client: forged
X-User-Id: forged
X_User_Id: forged
x_auth_client_id: forged
X-Auth-Request-User: forged
X-Real-IP: 203.0.113.66
X_Real_IP: 203.0.113.66
X-Forwarded-For: 203.0.113.66
X_Forwarded_For: 203.0.113.66
X-Forwarded-Host: evil.example
X_Forwarded_Host: evil.example
X-Forwarded-Proto: https
X-Forwarded-Uri: /other/mcp
X-Forwarded-Prefix: /other
Forwarded: for=203.0.113.66;host=evil.example
X-Client-IP: 203.0.113.66
True-Client-IP: 203.0.113.66
True_Client_IP: 203.0.113.66
CF-Connecting-IP: 203.0.113.66
X-Cluster-Client-IP: 203.0.113.66
Fastly-Client-IP: 203.0.113.66
X-Originating-IP: 203.0.113.66
X-Remote-Addr: 203.0.113.66
X-Remote-IP: 203.0.113.66
Client-IP: 203.0.113.66
X-Original-URI: /other/mcp
X-Original-Forwarded-For: 203.0.113.66
Mcp-Param-Region: eu
X-Custom-Kept: yes
`;
    const before = upstream.requests.length;
    expect(await rawRequest(gw.port, forged, body)).toBe(200);
    const seen = upstream.requests.slice(before).at(-1)?.headers ?? {};

    // The gateway's own view, and the identity from the token, under the configured names.
    expect(seen["x-remote-user"]).toBe("u-42");
    expect(seen.auth_client).toBe("c-42");
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe(`127.0.0.1:${gw.port}`);
    // End-to-end headers pass.
    expect(seen["mcp-param-region"]).toBe("eu");
    expect(seen["x-custom-kept"]).toBe("yes");
    // Nothing forged arrives under any spelling; no hop-by-hop header of the client's.
    const forgedValues = new Set(["forged", "203.0.113.66", "evil.example", "https", "/other/mcp", "/other"]);
    const leaked = Object.entries(seen).filter(
      ([name, value]) =>
        [value].flat().some((v) => v !== undefined && [...forgedValues].some((f) => String(v).includes(f))) ||
        ["x-hop-secret", "x-hop-other", "keep-alive", "proxy-connection", "te", "upgrade", "expect"].includes(
          normal(name),
        ),
    );
    expect(leaked).toEqual([]);
    // And no name is there twice once normalised (an upstream could read either).
    const names = Object.keys(seen).map(normal);
    expect(names.length).toBe(new Set(names).size);
  });

  const curl = checkBinary(CURL);
  it.skipIf(!curl.available)(
    "curl posting a 2 MB body (with its own Expect: 100-continue) gets 200",
    async () => {
      const token = await gw.token("echo");
      const dir = mkdtempSync(join(tmpdir(), "mcpgw-curl-"));
      try {
        const big = {
          ...INITIALIZE,
          params: { ...INITIALIZE.params, _meta: { pad: "x".repeat(2 * 1024 * 1024) } },
        };
        const file = join(dir, "body.json");
        writeFileSync(file, JSON.stringify(big));
        const before = upstream.requests.length;
        // Asynchronously: the gateway answers from this very process.
        const run = await promisify(execFile)(
          CURL,
          [
            "-sS",
            "-v",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "-H",
            `authorization: Bearer ${token}`,
            "--data-binary",
            `@${file}`,
            `${gw.url}/echo/mcp`,
          ],
          { encoding: "utf8", timeout: 30_000 },
        );
        // curl did send Expect (that is the case under test) and was answered 100 Continue.
        expect(run.stderr).toMatch(/> Expect: 100-continue/i);
        expect(run.stderr).toMatch(/< HTTP\/1\.1 100 Continue/i);
        expect(run.stdout).toBe("200");
        const seen = upstream.requests.slice(before).at(-1)?.headers ?? {};
        expect(seen.expect).toBeUndefined();
        expect(Number(seen["content-length"])).toBeGreaterThan(2 * 1024 * 1024);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
