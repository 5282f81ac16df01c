/**
 * Client ID Metadata Documents: a client whose client_id is the URL of its metadata document
 * gets through authorize and token without registering; bad documents and private addresses
 * are refused with readable errors.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeUrl,
  authorizeWithLocalLogin,
  Browser,
  pkcePair,
  REDIRECT_URI,
  tokenRequest,
} from "../support/oauth-client.js";

const LOGIN = { username: "carol", password: "a long password" };

describe("client ID metadata documents", () => {
  let docs: Server;
  let docBase: string;
  const documents = new Map<string, { body: string; headers?: Record<string, string> }>();
  let fetches = 0;
  let gw: RunningGateway;
  let strict: RunningGateway;

  beforeAll(async () => {
    docs = createServer((req, res) => {
      fetches++;
      const doc = documents.get(req.url ?? "");
      if (!doc) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json", ...doc.headers }).end(doc.body);
    });
    await new Promise<void>((resolve) => docs.listen(0, "127.0.0.1", resolve));
    docBase = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
    gw = await startFullGateway({ cimd: { allow_private_addresses: true } });
    strict = await startFullGateway();
    await new LocalUsers(gw.store).add(LOGIN.username, LOGIN.password);
  });
  afterAll(async () => {
    await gw.close({ wipe: true });
    await strict.close({ wipe: true });
    await new Promise((resolve) => docs.close(resolve));
  });

  const publish = (path: string, doc: Record<string, unknown>, headers?: Record<string, string>) => {
    const clientId = `${docBase}${path}`;
    documents.set(path, { body: JSON.stringify({ client_id: clientId, ...doc }), headers });
    return clientId;
  };

  const authorizeStatus = async (base: string, clientId: string) => {
    const res = await fetch(
      authorizeUrl(base, { client_id: clientId, code_challenge: pkcePair().challenge }),
      {
        redirect: "manual",
      },
    );
    return { status: res.status, location: res.headers.get("location"), text: await res.text() };
  };

  it("advertises support in the metadata", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta.client_id_metadata_document_supported).toBe(true);
  });

  it("authorizes and issues tokens to a client known only by its document URL", async () => {
    const clientId = publish(
      "/clients/app.json",
      { client_name: "Doc App", redirect_uris: [REDIRECT_URI] },
      { "cache-control": "max-age=60" },
    );
    const { verifier, challenge } = pkcePair();
    const back = await authorizeWithLocalLogin(
      gw.url,
      new Browser(),
      { client_id: clientId, code_challenge: challenge },
      LOGIN,
    );
    const code = back.searchParams.get("code") as string;
    expect(code).toBeTruthy();
    const before = fetches;
    const tokens = await tokenRequest(gw.url, {
      grant_type: "authorization_code",
      client_id: clientId,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    expect(tokens.status).toBe(200);
    expect(tokens.body.access_token).toBeTruthy();
    // Cached by max-age: the token request did not fetch the document again.
    expect(fetches).toBe(before);
  });

  it.each([
    [
      "a client_id that differs from the URL",
      { client_id: "https://elsewhere.example/app.json", redirect_uris: [REDIRECT_URI] },
      "does not match",
    ],
    ["no redirect_uris", { client_name: "x" }, "redirect_uris"],
    ["a client secret", { redirect_uris: [REDIRECT_URI], client_secret: "s" }, "secret"],
    [
      "a confidential auth method",
      { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "client_secret_basic" },
      "not supported",
    ],
  ])("refuses a document with %s", async (_name, doc, message) => {
    const path = `/bad/${Math.random().toString(36).slice(2)}.json`;
    const clientId = `${docBase}${path}`;
    documents.set(path, { body: JSON.stringify({ client_id: clientId, ...doc }) });
    const res = await authorizeStatus(gw.url, clientId);
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    expect(res.text).toContain(message);
  });

  it("refuses an oversized document and one that is not JSON", async () => {
    documents.set("/big.json", {
      body: JSON.stringify({
        client_id: `${docBase}/big.json`,
        redirect_uris: [REDIRECT_URI],
        pad: "x".repeat(10_000),
      }),
    });
    documents.set("/html.json", { body: "<html>not json</html>" });
    for (const [path, message] of [
      ["/big.json", "larger than"],
      ["/html.json", "not valid JSON"],
    ] as const) {
      const res = await authorizeStatus(gw.url, `${docBase}${path}`);
      expect(res.status).toBe(400);
      expect(res.text).toContain(message);
    }
  });

  it("never fetches from private or loopback addresses unless configured for tests", async () => {
    const before = fetches;
    for (const clientId of [
      "https://127.0.0.1/app.json",
      "https://169.254.169.254/latest/meta-data",
      "https://localhost/app.json",
      `${docBase}/clients/app.json`,
    ]) {
      const res = await authorizeStatus(strict.url, clientId);
      expect(res.status).toBe(400);
      expect(res.location).toBeNull();
    }
    expect(fetches).toBe(before);
  });
});
