/**
 * The device grant (RFC 8628) through the running app over real HTTP: discovery, registration,
 * /device_authorization and its refusals, the /device page (sign-in, code, consent) as a browser
 * with a cookie jar drives it, and what the polling device hears. Chromium runs the same flow
 * in test/e2e/device-flow.test.ts.
 */
import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import {
  answerDevice,
  approveDevice,
  DEVICE_GRANT,
  deviceAuthorization,
  enterCode,
  openDevicePage,
  pollOnce,
  registerDeviceClient,
  startDevice,
} from "../support/device.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import { Browser, REDIRECT_URI, registerClient, tokenRequest } from "../support/oauth-client.js";
import { roomInBrakeWindow } from "../support/wait.js";
import { addLocalUser, basicOf, LOGIN, rawPost, SERVICES, sleep } from "./helpers.js";

const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
/** A user of the brake tests, so the main user's count stays clean. */
const GUESSER = { username: "guesser", password: "guesser's own password" };
/** The page-headers test's user: its wrong code counts against nobody else's brake. */
const VIEWER = { username: "viewer", password: "viewer's own password" };

describe("device authorization grant over HTTP", () => {
  let gw: RunningGateway;
  /** Device and user codes live two seconds. */
  let shortLived: RunningGateway;
  /** Polls at least 3 s apart; 4 device authorizations per address a day (no window ends mid-test). */
  let paced: RunningGateway;

  beforeAll(async () => {
    [gw, shortLived, paced] = await Promise.all([
      startFullGateway({ ...SERVICES, rate_limits: { device: { per_user: { max: 3 } } } }),
      startFullGateway({ ...SERVICES, tokens: { device_code_ttl: 2 } }),
      startFullGateway({
        ...SERVICES,
        tokens: { device_poll_interval: 3 },
        rate_limits: { device_authorization: { per_address: { max: 4, window: 86_400 } } },
      }),
    ]);
    await Promise.all([gw, shortLived, paced].map(addLocalUser));
    await new LocalUsers(gw.store).add(GUESSER.username, GUESSER.password);
    await new LocalUsers(gw.store).add(VIEWER.username, VIEWER.password);
  });
  afterAll(async () => {
    await Promise.all([gw, shortLived, paced].map((g) => g?.close({ wipe: true })));
  });

  it("is advertised in the RFC 8414 metadata", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta.device_authorization_endpoint).toBe(`${gw.url}/device_authorization`);
    expect(meta.grant_types_supported).toContain(DEVICE_GRANT);
  });

  it("registers device-only clients without redirect URIs, and still refuses grants it does not have", async () => {
    const device = await registerDeviceClient(gw.url);
    expect(device.grant_types).toEqual([DEVICE_GRANT, "refresh_token"]);
    expect(device.redirect_uris).toEqual([]);
    for (const grant_types of [["refresh_token"], ["client_credentials"]]) {
      const res = await rawPost(
        `${gw.url}/register`,
        JSON.stringify({ redirect_uris: [REDIRECT_URI], grant_types }),
        { "content-type": "application/json" },
      );
      expect(`${res.status} ${res.body.error}`, grant_types.join()).toBe("400 invalid_client_metadata");
    }
    const codeWithoutRedirect = await rawPost(
      `${gw.url}/register`,
      JSON.stringify({ grant_types: ["authorization_code", DEVICE_GRANT] }),
      { "content-type": "application/json" },
    );
    expect(`${codeWithoutRedirect.status} ${codeWithoutRedirect.body.error}`).toBe(
      "400 invalid_redirect_uri",
    );
  });

  it("answers the device with codes, the verification URIs, lifetime and interval", async () => {
    const client = await registerDeviceClient(gw.url);
    const res = await deviceAuthorization(gw.url, {
      client_id: client.client_id,
      resource: `${gw.url}/notes/mcp`,
      scope: "notes:read unknown:scope",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const codes = res.body;
    expect(codes.user_code).toMatch(USER_CODE);
    expect(String(codes.device_code).length).toBeGreaterThanOrEqual(43);
    expect(codes).toMatchObject({
      verification_uri: `${gw.url}/device`,
      verification_uri_complete: `${gw.url}/device?user_code=${codes.user_code}`,
      expires_in: 600,
      interval: 5,
    });
    const first = await pollOnce(gw.url, client, codes.device_code as string);
    expect(`${first.status} ${first.body.error}`).toBe("400 authorization_pending");
    expect(first.headers.get("cache-control")).toBe("no-store");
  });

  it("refuses clients as /token does, and unknown resources with invalid_target", async () => {
    const codeOnly = await registerClient(gw.url);
    const notRegistered = await deviceAuthorization(gw.url, { client_id: codeOnly.client_id });
    expect(`${notRegistered.status} ${notRegistered.body.error}`).toBe("400 unauthorized_client");

    const confidential = await registerDeviceClient(gw.url, {
      token_endpoint_auth_method: "client_secret_basic",
    });
    const wrongSecret = await deviceAuthorization(
      gw.url,
      {},
      { id: confidential.client_id, secret: "wrong" },
    );
    expect(`${wrongSecret.status} ${wrongSecret.body.error}`).toBe("401 invalid_client");
    expect(wrongSecret.headers.get("www-authenticate")).toMatch(/^Basic /);
    const otherMethod = await deviceAuthorization(gw.url, {
      client_id: confidential.client_id,
      client_secret: confidential.client_secret as string,
    });
    expect(`${otherMethod.status} ${otherMethod.body.error}`).toBe("401 invalid_client");
    const unknown = await deviceAuthorization(gw.url, { client_id: "no-such-client" });
    expect(`${unknown.status} ${unknown.body.error}`).toBe("401 invalid_client");
    const ok = await deviceAuthorization(gw.url, {}, basicOf(confidential));
    expect(ok.status).toBe(200);

    const client = await registerDeviceClient(gw.url);
    const target = await deviceAuthorization(gw.url, {
      client_id: client.client_id,
      resource: "https://elsewhere.example/mcp",
    });
    expect(`${target.status} ${target.body.error}`).toBe("400 invalid_target");
    const json = await rawPost(
      `${gw.url}/device_authorization`,
      JSON.stringify({ client_id: client.client_id }),
      {
        "content-type": "application/json",
      },
    );
    expect(`${json.status} ${json.body.error}`).toBe("400 invalid_request");
  });

  it("authenticates a private_key_jwt client with an assertion made for the device endpoint, and once", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "box-1", alg: "ES256", use: "sig" };
    const client = await registerDeviceClient(gw.url, {
      token_endpoint_auth_method: "private_key_jwt",
      jwks: { keys: [jwk] },
    });
    const assertion = (aud: string) =>
      new SignJWT({ iss: client.client_id, sub: client.client_id, aud, jti: randomUUID() })
        .setProtectedHeader({ alg: "ES256", kid: "box-1" })
        .setIssuedAt()
        .setExpirationTime("1m")
        .sign(privateKey);
    const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    const signed = await assertion(`${gw.url}/device_authorization`);
    const form = { client_id: client.client_id, client_assertion_type: JWT_BEARER, client_assertion: signed };
    const codes = await deviceAuthorization(gw.url, form);
    expect(codes.status).toBe(200);
    const replayed = await deviceAuthorization(gw.url, form);
    expect(`${replayed.status} ${replayed.body.error}`).toBe("401 invalid_client");
    const unsigned = await deviceAuthorization(gw.url, { client_id: client.client_id });
    expect(`${unsigned.status} ${unsigned.body.error}`).toBe("401 invalid_client");
    const poll = await tokenRequest(gw.url, {
      grant_type: DEVICE_GRANT,
      device_code: codes.body.device_code as string,
      client_id: client.client_id,
      client_assertion_type: JWT_BEARER,
      client_assertion: await assertion(`${gw.url}/token`),
    });
    expect(`${poll.status} ${poll.body.error}`).toBe("400 authorization_pending");
  });

  it("signs the person in, takes the code from the link only after a confirmation, names client and services, then gives the device tokens", async () => {
    const client = await registerDeviceClient(gw.url, { client_name: "Build server" });
    const codes = await startDevice(gw.url, client, { resource: `${gw.url}/notes/mcp` });
    const browser = new Browser();

    // Not signed in: the device page sends the browser through the login form and back.
    const first = await browser.get(codes.verification_uri_complete);
    expect(first.status).toBe(302);
    expect(first.headers.get("location")).toMatch(/^\/login\?request=/);
    const login = await (await browser.get(`${gw.url}${first.headers.get("location")}`)).text();
    expect(login).toContain("A device");
    const form = await openDevicePage(gw.url, browser, codes.verification_uri_complete, LOGIN);
    expect(form.html).toContain(`value="${codes.user_code}"`);
    expect(form.html).toContain('id="link-warning"');
    expect(`${(await pollOnce(gw.url, client, codes.device_code)).body.error}`).toBe("authorization_pending");

    // Typed in lower case with a space: the same code.
    const typed = codes.user_code.toLowerCase().replace("-", " ");
    const consent = await enterCode(gw.url, browser, form.csrf, typed);
    expect(consent.status).toBe(200);
    expect(consent.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(consent.headers.get("x-frame-options")).toBe("DENY");
    expect(consent.html).toContain('<span id="client-name">Build server</span>');
    expect(consent.html).toContain(`<strong id="user-code">${codes.user_code}</strong>`);
    expect(consent.html).toContain("<li>notes</li>");
    expect(consent.html).toContain("<code>notes:read</code>");

    const done = await answerDevice(gw.url, browser, form.csrf, codes.user_code, "allow");
    expect(done.status).toBe(200);
    expect(done.html).toContain("Device connected");

    const tokens = await pollOnce(gw.url, client, codes.device_code);
    expect(tokens.status).toBe(200);
    expect(tokens.body).toMatchObject({ token_type: "Bearer", scope: "notes:read notes:write" });
    expect(tokens.body.refresh_token).toBeTruthy();
    const refreshed = await tokenRequest(gw.url, {
      grant_type: "refresh_token",
      refresh_token: tokens.body.refresh_token as string,
      client_id: client.client_id,
    });
    expect(refreshed.status).toBe(200);
    // Single use: the code is spent, and the code on the page no longer works.
    expect(`${(await pollOnce(gw.url, client, codes.device_code)).body.error}`).toBe("invalid_grant");
    expect((await enterCode(gw.url, browser, form.csrf, codes.user_code)).status).toBe(400);
  });

  it("answers access_denied to the device after the person denied", async () => {
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client);
    await approveDevice(gw.url, codes, LOGIN, "deny");
    const res = await pollOnce(gw.url, client, codes.device_code);
    expect(`${res.status} ${res.body.error}`).toBe("400 access_denied");
  });

  it("says a wrong code is wrong, and refuses forms without the page's token or from another site", async () => {
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client);
    const browser = new Browser();
    const { csrf } = await openDevicePage(gw.url, browser, codes.verification_uri, LOGIN);
    const malformed = await enterCode(gw.url, browser, csrf, "ABC");
    expect(malformed.status).toBe(400);
    expect(malformed.html).toContain("eight letters");
    const wrong = await enterCode(
      gw.url,
      browser,
      csrf,
      codes.user_code === "BBBB-BBBB" ? "CCCC-CCCC" : "BBBB-BBBB",
    );
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain("not valid");
    expect((await enterCode(gw.url, browser, "forged", codes.user_code)).status).toBe(403);
    const crossSite = await enterCode(gw.url, browser, csrf, codes.user_code, {
      origin: "https://evil.example",
      "sec-fetch-site": "cross-site",
    });
    expect(crossSite.status).toBe(403);
    // A consent form posted without the consent page in between is checked the same way.
    expect((await answerDevice(gw.url, browser, "forged", codes.user_code, "allow")).status).toBe(403);
    expect(`${(await pollOnce(gw.url, client, codes.device_code)).body.error}`).toBe("authorization_pending");
  });

  it("serves every device page with the login page's headers, and takes no answer from another site", async () => {
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client);
    const browser = new Browser();
    const SECURITY = [
      "content-type",
      "content-security-policy",
      "x-frame-options",
      "x-content-type-options",
      "referrer-policy",
      "cache-control",
    ];
    const securityOf = (headers: Headers) => Object.fromEntries(SECURITY.map((n) => [n, headers.get(n)]));
    const toLogin = await browser.get(codes.verification_uri);
    const loginPage = await browser.get(`${gw.url}${toLogin.headers.get("location")}`);
    expect(loginPage.status).toBe(200);
    const login = securityOf(loginPage.headers);
    expect(login["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(login["x-frame-options"]).toBe("DENY");

    const { csrf } = await openDevicePage(gw.url, browser, codes.verification_uri, VIEWER);
    const form = await browser.get(`${gw.url}/device`);
    const wrong = await enterCode(gw.url, browser, csrf, "BBBB-BBBB");
    const consent = await enterCode(gw.url, browser, csrf, codes.user_code);
    const crossSite = await browser.postForm(
      `${gw.url}/device/consent`,
      { csrf, user_code: codes.user_code, decision: "allow" },
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    );
    const noOrigin = await browser.postForm(
      `${gw.url}/device/consent`,
      { csrf, user_code: codes.user_code, decision: "allow" },
      { origin: "", "sec-fetch-site": "" },
    );
    const pages = [
      ["code form", form.status, form.headers],
      ["wrong code", wrong.status, wrong.headers],
      ["consent", consent.status, consent.headers],
      ["consent from another site", crossSite.status, crossSite.headers],
      ["consent from no page", noOrigin.status, noOrigin.headers],
    ] as const;
    expect(pages.map(([name, status]) => `${name} ${status}`)).toEqual([
      "code form 200",
      "wrong code 400",
      "consent 200",
      "consent from another site 403",
      "consent from no page 403",
    ]);
    for (const [name, , headers] of pages) expect(securityOf(headers), name).toEqual(login);
    // Neither refused form answered for the person: the device still waits, and the person can.
    expect(`${(await pollOnce(gw.url, client, codes.device_code)).body.error}`).toBe("authorization_pending");
    expect((await answerDevice(gw.url, browser, csrf, codes.user_code, "allow")).status).toBe(200);
    expect((await pollOnce(gw.url, client, codes.device_code)).status).toBe(200);
  });

  it("stops a user typing wrong codes with 429, whatever session they type in, before even the right code", {
    timeout: 60_000,
  }, async () => {
    // The wrong codes and the refusals after them counted in one window.
    await roomInBrakeWindow(gw.config.rate_limits.device.per_user.window, 20);
    const client = await registerDeviceClient(gw.url);
    const codes = await startDevice(gw.url, client);
    const browser = new Browser();
    const { csrf } = await openDevicePage(gw.url, browser, codes.verification_uri, GUESSER);
    const wrongCode = codes.user_code === "BBBB-BBBB" ? "CCCC-CCCC" : "BBBB-BBBB";
    for (let i = 0; i < 3; i++) expect((await enterCode(gw.url, browser, csrf, wrongCode)).status).toBe(400);
    const braked = await enterCode(gw.url, browser, csrf, codes.user_code);
    expect(braked.status).toBe(429);
    expect(Number(braked.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(braked.html).toContain("Too many wrong codes");
    // The consent form is no way around it, and neither is a new session.
    expect((await answerDevice(gw.url, browser, csrf, codes.user_code, "allow")).status).toBe(429);
    const again = new Browser();
    const second = await openDevicePage(gw.url, again, codes.verification_uri, GUESSER);
    expect((await enterCode(gw.url, again, second.csrf, codes.user_code)).status).toBe(429);
    // Someone else still gets in.
    await approveDevice(gw.url, codes, LOGIN);
    expect((await pollOnce(gw.url, client, codes.device_code)).status).toBe(200);
  });

  it("answers expired_token once the codes' lifetime is over, and the page no longer takes the code", async () => {
    const client = await registerDeviceClient(shortLived.url);
    const codes = await startDevice(shortLived.url, client);
    // The request was created before its answer arrived: its lifetime is over two seconds from now.
    const over = Date.now() + 2000;
    expect(codes.expires_in).toBe(2);
    // Polled at once: the sign-in below may take longer than the two seconds on a busy machine.
    expect((await pollOnce(shortLived.url, client, codes.device_code)).body.error).toBe(
      "authorization_pending",
    );
    const browser = new Browser();
    const { csrf } = await openDevicePage(shortLived.url, browser, codes.verification_uri, LOGIN);
    await sleep(Math.max(0, over - Date.now()) + 50);
    const answer = await pollOnce(shortLived.url, client, codes.device_code);
    expect(`${answer.status} ${answer.body.error}`).toBe("400 expired_token");
    const late = await enterCode(shortLived.url, browser, csrf, codes.user_code);
    expect(late.status).toBe(400);
    expect(late.html).toContain("expired");
  });

  it("answers slow_down to a device polling sooner than its interval, and the interval grows by 5 s", {
    timeout: 60_000,
  }, async () => {
    // This test and the next share the paced gateway's daily count of device authorizations.
    await roomInBrakeWindow(86_400, 30);
    const client = await registerDeviceClient(paced.url);
    const codes = await startDevice(paced.url, client);
    expect(codes.interval).toBe(3);
    const answer = async () => (await pollOnce(paced.url, client, codes.device_code)).body;
    expect((await answer()).error).toBe("authorization_pending");
    const fast = await answer();
    expect(fast.error).toBe("slow_down");
    expect(fast.error_description).toContain("8 s");
    // Waiting the advertised 3 s is no longer enough: the interval is 8 s now, then 13 s.
    await sleep(4000);
    const stillFast = await answer();
    expect(stillFast.error).toBe("slow_down");
    expect(stillFast.error_description).toContain("13 s");
  });

  it("answers device authorization requests past the per-address limit 429 OAuth JSON with Retry-After", async () => {
    const client = await registerDeviceClient(paced.url);
    const answers: Awaited<ReturnType<typeof deviceAuthorization>>[] = [];
    // The slow_down test may have taken one of the four already.
    for (let i = 0; i < 5; i++)
      answers.push(await deviceAuthorization(paced.url, { client_id: client.client_id }));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    const braked = answers.at(-1);
    expect(`${braked?.status} ${braked?.body.error}`).toBe("429 temporarily_unavailable");
    expect(Number(braked?.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(braked?.headers.get("content-type")).toMatch(/^application\/json/);
  });
});
