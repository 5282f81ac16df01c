/**
 * Abuse brakes through the real app: counted in the store (so every instance shares them),
 * refused with 429 and Retry-After in each route's own shape (OAuth JSON for machines, the
 * login form again for a person).
 *
 * Client addresses come two honest ways: a client socket bound to another loopback address
 * (127.0.0.2, 127.0.0.3, … all reach the gateway's 127.0.0.1 listener), so `request.ip` differs
 * with no proxy in the path; and, for the login brakes, X-Forwarded-For sent by the test acting
 * as the trusted proxy (`trust_proxy: "127.0.0.1"`), the topology behind a company NAT or a
 * reverse proxy.
 */
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalUsers } from "../../src/idp/local.js";
import { type RunningGateway, startFullGateway } from "../support/full-gateway.js";
import {
  authorizeUrl,
  Browser,
  formField,
  pkcePair,
  REDIRECT_URI,
  type RegisteredClient,
  registerClient,
  tokenRequest,
} from "../support/oauth-client.js";
import { startRedis, type TestRedis } from "../support/redis.js";
import { roomInBrakeWindow } from "../support/wait.js";
import { addLocalUser, obtainTokens, registerKeyClient } from "./helpers.js";

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

/** A connection pool whose sockets leave from `address` (a loopback alias): the gateway's `request.ip`. */
const agents = new Map<string, Agent>();
function from(address: string): Agent {
  let agent = agents.get(address);
  if (!agent) {
    agent = new Agent({ localAddress: address });
    agents.set(address, agent);
  }
  return agent;
}

async function register(base: string, address: string): Promise<Answer> {
  const res = await request(`${base}/register`, {
    method: "POST",
    dispatcher: from(address),
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "brake test",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
    }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

async function postToken(base: string, address: string, form: Record<string, string>): Promise<Answer> {
  const res = await request(`${base}/token`, {
    method: "POST",
    dispatcher: from(address),
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Retry-After as whole seconds, no later than the window that was configured. */
function expectRetryAfter(
  answer: { headers: Record<string, string | string[] | undefined> },
  window: number,
) {
  const value = Number(answer.headers["retry-after"]);
  expect(Number.isInteger(value), `Retry-After ${answer.headers["retry-after"]}`).toBe(true);
  expect(value).toBeGreaterThanOrEqual(1);
  expect(value).toBeLessThanOrEqual(window);
}

function auditEvents(lines: string[], type: string): Array<Record<string, unknown>> {
  return lines
    .map((l) => JSON.parse(l) as { audit?: Record<string, unknown> })
    .flatMap((l) => (l.audit && l.audit.type === type ? [l.audit] : []));
}

afterAll(async () => {
  for (const agent of agents.values()) await agent.close();
});

describe("registration brake", () => {
  let gw: RunningGateway;
  const log: string[] = [];
  beforeAll(async () => {
    gw = await startFullGateway({ log_level: "info" }, { logLines: log });
  });
  afterAll(() => gw?.close({ wipe: true }));

  it("300 anonymous registrations from one address: 429 with Retry-After past the limit; another address is unaffected", {
    timeout: 120_000,
  }, async () => {
    await roomInBrakeWindow(gw.config.rate_limits.register.per_address.window, 60);
    const answers: Answer[] = [];
    for (let i = 0; i < 300; i++) answers.push(await register(gw.url, "127.0.0.2"));
    const created = answers.filter((a) => a.status === 201).length;
    const refused = answers.filter((a) => a.status === 429);
    expect(created, "registrations before the brake").toBeLessThan(300);
    expect(created).toBe(gw.config.rate_limits.register.per_address.max);
    expect(refused.length).toBe(300 - created);
    // Nothing else: no 500, no 400.
    expect(answers.every((a) => a.status === 201 || a.status === 429)).toBe(true);
    const first = refused[0] as Answer;
    expectRetryAfter(first, gw.config.rate_limits.register.per_address.window);
    expect(first.headers["cache-control"]).toBe("no-store");
    expect(JSON.parse(first.text)).toMatchObject({ error: "temporarily_unavailable" });

    expect((await register(gw.url, "127.0.0.3")).status).toBe(201);

    // One audit event when the brake trips, not one per refused request.
    const tripped = auditEvents(log, "rate.limited");
    expect(tripped).toEqual([
      expect.objectContaining({ rule: "register.per_address", address: "127.0.0.2" }),
    ]);
  });
});

describe.each([
  { name: "sqlite", redis: false },
  { name: "redis", redis: true },
])("two instances on one $name store share the counts", ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  const instances: RunningGateway[] = [];
  const limits = { rate_limits: { register: { per_address: { max: 10, window: "1h" } } } };

  beforeAll(async () => {
    if (useRedis) {
      redis = await startRedis();
      if (!redis) return;
    }
    const shared = redis
      ? { store: { type: "redis", redis: { url: redis.url, key_prefix: "brakes:" } } }
      : {};
    await roomInBrakeWindow(3600, 30);
    const first = await startFullGateway({ ...limits, ...shared });
    instances.push(first);
    instances.push(
      await startFullGateway(
        { ...limits, ...shared, public_url: first.config.public_url, keys: first.config.keys },
        { dataDir: first.dataDir },
      ),
    );
  });
  afterAll(async () => {
    for (const g of instances.reverse()) await g.close({ wipe: true });
    await redis?.stop();
  });

  it("registrations alternating between instances are counted once", async (ctx) => {
    if (useRedis && !redis) ctx.skip();
    const [a, b] = instances as [RunningGateway, RunningGateway];
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await register((i % 2 ? b : a).url, "127.0.0.4")).status);
    expect(statuses).toEqual(Array(10).fill(201));
    expect((await register(a.url, "127.0.0.4")).status).toBe(429);
    expect((await register(b.url, "127.0.0.4")).status).toBe(429);
    expect((await register(b.url, "127.0.0.5")).status).toBe(201);
  });
});

describe("token brake", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway({
      rate_limits: {
        token: { per_client: { max: 3, window: "1h" }, per_address: { max: 8, window: "1h" } },
      },
    });
    // Each test counts to a max and expects the next request refused: all in one window.
    await roomInBrakeWindow(3600, 30);
  });
  afterAll(() => gw?.close({ wipe: true }));

  const bogusCode = (clientId: string) => ({
    grant_type: "authorization_code",
    client_id: clientId,
    code: "not-a-code",
    code_verifier: "x".repeat(43),
    redirect_uri: REDIRECT_URI,
  });

  it("per client: past the limit 429 temporarily_unavailable with Retry-After, whatever the address", async () => {
    const client = await registerClient(gw.url);
    for (const address of ["127.0.0.6", "127.0.0.7", "127.0.0.8"]) {
      const res = await postToken(gw.url, address, bogusCode(client.client_id));
      expect(`${res.status} ${JSON.parse(res.text).error}`).toBe("400 invalid_grant");
    }
    const refused = await postToken(gw.url, "127.0.0.9", bogusCode(client.client_id));
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text)).toMatchObject({ error: "temporarily_unavailable" });
    expectRetryAfter(refused, 3600);
    // Another client is not held up by this one.
    const other = await registerClient(gw.url);
    expect((await postToken(gw.url, "127.0.0.9", bogusCode(other.client_id))).status).toBe(400);
  });

  it("per address: many clients from one address are held at the address's limit", async () => {
    const clients: RegisteredClient[] = [];
    for (let i = 0; i < 9; i++) clients.push(await registerClient(gw.url));
    const statuses: number[] = [];
    for (const c of clients)
      statuses.push((await postToken(gw.url, "127.0.0.10", bogusCode(c.client_id))).status);
    expect(statuses).toEqual([...Array(8).fill(400), 429]);
    // The fetch client of the test suite (127.0.0.1) is another address.
    expect((await tokenRequest(gw.url, bogusCode((clients[8] as RegisteredClient).client_id))).status).toBe(
      400,
    );
  });

  // The brakes are counted beside the form's reading (TokenEndpoint.handle), not before it: the
  // refusal must still be the answer whatever is wrong with the form.
  it("past the limit the refusal wins over a bad form: 429, not the form's 400", async () => {
    const address = "127.0.0.11";
    const client = await registerClient(gw.url);
    for (let i = 0; i < 3; i++) await postToken(gw.url, address, bogusCode(client.client_id));
    const noGrantType = await postToken(gw.url, address, { client_id: client.client_id });
    expect(`${noGrantType.status} ${JSON.parse(noGrantType.text).error}`).toBe("429 temporarily_unavailable");
    expectRetryAfter(noGrantType, 3600);
    const unsupported = await postToken(gw.url, address, {
      grant_type: "password",
      client_id: client.client_id,
    });
    expect(unsupported.status).toBe(429);
    const json = await request(`${gw.url}/token`, {
      method: "POST",
      dispatcher: from(address),
      headers: { "content-type": "application/json" },
      body: JSON.stringify(bogusCode(client.client_id)),
    });
    expect(json.statusCode, await json.body.text()).toBe(429);
  });
});

describe("token brake on refresh", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway({
      rate_limits: {
        token: { per_client: { max: 2, window: "1s" }, per_address: { max: 1000, window: "1m" } },
      },
    });
    await addLocalUser(gw);
  });
  afterAll(() => gw?.close({ wipe: true }));

  it("a refresh refused by the brake spends nothing: the same token refreshes once the window has passed", async () => {
    const client = await registerClient(gw.url);
    let token = (await obtainTokens(gw, client)).refresh_token;
    const refresh = () =>
      postToken(gw.url, "127.0.0.12", {
        grant_type: "refresh_token",
        client_id: client.client_id,
        refresh_token: token,
      });
    // Refresh until the client's window is full and the brake refuses this token's refresh.
    let answer = await refresh();
    while (answer.status === 200) {
      token = JSON.parse(answer.text).refresh_token;
      answer = await refresh();
    }
    expect(`${answer.status} ${JSON.parse(answer.text).error}`).toBe("429 temporarily_unavailable");
    expectRetryAfter(answer, 1);
    // The refused request neither rotated the token nor marked it used: in a later window the
    // same token refreshes (a rotated one would be reuse, invalid_grant).
    while (answer.status === 429) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await refresh();
    }
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text).refresh_token).not.toBe(token);
  });
});

describe("token brake for private_key_jwt clients", () => {
  // The per-address limit is far above what the test sends from any one address, so only the
  // per-client count can refuse: a brake that counted these clients per address alone never trips.
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway({
      rate_limits: {
        token: { per_client: { max: 3, window: "1h" }, per_address: { max: 50, window: "1h" } },
      },
    });
    await roomInBrakeWindow(3600, 30);
  });
  afterAll(() => gw?.close({ wipe: true }));

  const keyClient = () => registerKeyClient(gw);

  /** A code grant with a code that does not exist: authenticated, then invalid_grant. */
  const bogusCode = async (assertion: () => Promise<string>) => ({
    grant_type: "authorization_code",
    code: "not-a-code",
    code_verifier: "x".repeat(43),
    redirect_uri: REDIRECT_URI,
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: await assertion(),
  });

  it("a client naming itself only in its assertion is counted per client: 429 with Retry-After from a fresh address", async () => {
    const { assertion } = await keyClient();
    for (const address of ["127.0.0.21", "127.0.0.22", "127.0.0.23"]) {
      const res = await postToken(gw.url, address, await bogusCode(assertion));
      expect(`${res.status} ${JSON.parse(res.text).error}`).toBe("400 invalid_grant");
    }
    const refused = await postToken(gw.url, "127.0.0.24", await bogusCode(assertion));
    expect(refused.status, refused.text).toBe(429);
    expect(JSON.parse(refused.text)).toMatchObject({ error: "temporarily_unavailable" });
    expect(JSON.parse(refused.text).error_description).toContain("for this client");
    expectRetryAfter(refused, 3600);
    // Another private_key_jwt client on the same address is not held up by this one.
    const other = await keyClient();
    const res = await postToken(gw.url, "127.0.0.24", await bogusCode(other.assertion));
    expect(`${res.status} ${JSON.parse(res.text).error}`).toBe("400 invalid_grant");
  });

  it("the same client sending client_id in the form as well is one count, not two subjects", async () => {
    const { client, assertion } = await keyClient();
    const statuses: number[] = [];
    for (const [i, address] of ["127.0.0.25", "127.0.0.26", "127.0.0.27", "127.0.0.28"].entries()) {
      const form = await bogusCode(assertion);
      // Alternate: named in the form and the assertion, then in the assertion only.
      statuses.push(
        (await postToken(gw.url, address, i % 2 ? form : { ...form, client_id: client.client_id })).status,
      );
    }
    expect(statuses).toEqual([400, 400, 400, 429]);
  });
});

describe("authorize brake", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startFullGateway({ rate_limits: { authorize: { per_address: { max: 3, window: "1h" } } } });
    await roomInBrakeWindow(3600, 30);
  });
  afterAll(() => gw?.close({ wipe: true }));

  it("past the per-address limit a person gets a 429 page with Retry-After", async () => {
    const client = await registerClient(gw.url);
    const url = authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: pkcePair().challenge });
    const get = async () => {
      const res = await request(url, { dispatcher: from("127.0.0.11") });
      return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    };
    for (let i = 0; i < 3; i++) expect((await get()).status).toBe(302);
    const refused = await get();
    expect(refused.status).toBe(429);
    expect(String(refused.headers["content-type"])).toMatch(/^text\/html/);
    expect(refused.text).toContain("Too many");
    expectRetryAfter(refused, 3600);
  });
});

describe("login brakes behind a trusted proxy", () => {
  let gw: RunningGateway;
  let client: RegisteredClient;
  const log: string[] = [];
  beforeAll(async () => {
    // The test is the proxy at 127.0.0.1; the client address is what it puts in X-Forwarded-For.
    gw = await startFullGateway({ trust_proxy: "127.0.0.1", log_level: "info" }, { logLines: log });
    client = await registerClient(gw.url);
    // The per-user count runs to its max in the first test: in one 15-minute window.
    await roomInBrakeWindow(gw.config.rate_limits.login.per_user.window, 20);
  });
  afterAll(() => gw?.close({ wipe: true }));

  /** A browser behind `address`: opens /authorize and the login page; returns its form fields. */
  async function loginForm(address: string): Promise<{ browser: Browser; form: Record<string, string> }> {
    const browser = new Browser({ "x-forwarded-for": address });
    const start = await browser.get(
      authorizeUrl(gw.url, { client_id: client.client_id, code_challenge: pkcePair().challenge }),
    );
    expect(start.status).toBe(302);
    const page = await (
      await browser.get(new URL(start.headers.get("location") as string, gw.url).toString())
    ).text();
    return { browser, form: { request: formField(page, "request"), csrf: formField(page, "csrf") } };
  }

  async function attempt(address: string, username: string, password: string): Promise<Response> {
    const { browser, form } = await loginForm(address);
    return browser.postForm(`${gw.url}/login`, { ...form, username, password });
  }

  it("guessing one user's password from many addresses is stopped per user name; another user on the guesser's address still signs in", async () => {
    const users = new LocalUsers(gw.store);
    await users.add("henry", "henry's right password");
    await users.add("bob", "bob's right password");
    // The documented default: 10 failed sign-ins per user name in 15 minutes.
    const perUser = 10;
    for (let i = 0; i < perUser; i++) {
      const wrong = await attempt(`203.0.113.${i + 1}`, "henry", `guess ${i}`);
      expect(wrong.status, `guess ${i}`).toBe(401);
    }
    // From an address never seen, even the right password waits: the name is what is braked.
    const blocked = await attempt("203.0.113.200", "Henry", "henry's right password");
    expect(blocked.status).toBe(429);
    expectRetryAfter({ headers: { "retry-after": blocked.headers.get("retry-after") ?? undefined } }, 900);
    const html = await blocked.text();
    expect(html).toContain("Too many failed sign-ins");
    expect(html).toContain('action="/login"');

    const bob = await attempt("203.0.113.1", "bob", "bob's right password");
    expect(bob.status).toBe(200);
    expect(await bob.text()).toContain('action="/consent"');

    const tripped = auditEvents(log, "rate.limited");
    expect(tripped).toEqual([expect.objectContaining({ rule: "login.per_user", user: "henry" })]);
  });

  it("many users behind one address (a company NAT), each with a few typos, all sign in", {
    timeout: 180_000,
  }, async () => {
    const users = new LocalUsers(gw.store);
    // 9 people x 6 typos: more than the 50 failures per address that used to lock out everyone
    // behind it, fewer than a per-user brake needs.
    const team = Array.from({ length: 9 }, (_, i) => `member${i}`);
    await Promise.all(team.map((name) => users.add(name, `${name}'s password`)));
    const signIn = async (name: string) => {
      for (let typo = 0; typo < 6; typo++) {
        const wrong = await attempt("198.51.100.7", name, `${name}'s pasword ${typo}`);
        expect(wrong.status, `${name}'s typo ${typo}`).toBe(401);
      }
      // Signed in: the consent page for this client.
      const right = await attempt("198.51.100.7", name, `${name}'s password`);
      expect(right.status, `${name} signs in`).toBe(200);
      expect(await right.text()).toContain('action="/consent"');
    };
    await Promise.all(team.map(signIn));
  });
});
