/**
 * The device grant (RFC 8628) from both ends over real HTTP: the device's requests
 * (/device_authorization, polling /token) and a person's browser on /device (sign in through the
 * login form, type the code, answer the consent page).
 */
import {
  Browser,
  endpointPost,
  formField,
  type RegisteredClient,
  registerClient,
  tokenRequest,
} from "./oauth-client.js";

export const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

export interface DeviceCodes {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

/** A public client registered for the device grant (and refresh), with no redirect URIs. */
export function registerDeviceClient(
  base: string,
  metadata: Record<string, unknown> = {},
): Promise<RegisteredClient> {
  return registerClient(base, {
    client_name: "Headless box",
    redirect_uris: undefined,
    grant_types: [DEVICE_GRANT, "refresh_token"],
    ...metadata,
  });
}

/** POST /device_authorization; `basic` for a client_secret_basic client. */
export function deviceAuthorization(
  base: string,
  form: Record<string, string | string[]>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  return endpointPost(`${base}/device_authorization`, form, basic);
}

/** Device codes for a public client, asserting success. */
export async function startDevice(
  base: string,
  client: RegisteredClient,
  extra: Record<string, string | string[]> = {},
): Promise<DeviceCodes> {
  const res = await deviceAuthorization(base, { client_id: client.client_id, ...extra });
  if (res.status !== 200)
    throw new Error(`device authorization failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as unknown as DeviceCodes;
}

/** One poll of /token with the device code (a public client). */
export function pollOnce(base: string, client: RegisteredClient, deviceCode: string) {
  return tokenRequest(base, {
    grant_type: DEVICE_GRANT,
    device_code: deviceCode,
    client_id: client.client_id,
  });
}

/**
 * A device that polls as RFC 8628 §3.5 says, in the background: every `interval` seconds, 5 s
 * more after each slow_down, until an answer other than authorization_pending/slow_down.
 */
export function pollUntilAnswered(
  base: string,
  client: RegisteredClient,
  codes: DeviceCodes,
): { answers: string[]; done: Promise<{ status: number; body: Record<string, unknown> }> } {
  const answers: string[] = [];
  const done = (async () => {
    let interval = codes.interval;
    for (;;) {
      const res = await pollOnce(base, client, codes.device_code);
      const error = res.body.error as string | undefined;
      answers.push(error ?? "tokens");
      if (error === "slow_down") interval += 5;
      else if (error !== "authorization_pending") return res;
      await new Promise((r) => setTimeout(r, interval * 1000));
    }
  })();
  return { answers, done };
}

/**
 * Opens `url` (the device page, with or without a code) in `browser`, signing in through the
 * login form when asked to, and returns the code form page it ends on.
 */
export async function openDevicePage(
  base: string,
  browser: Browser,
  url: string,
  login: { username: string; password: string },
): Promise<{ status: number; html: string; csrf: string }> {
  let res = await browser.get(url);
  for (let hops = 0; hops < 5; hops++) {
    if (res.status === 302 || res.status === 303) {
      res = await browser.get(new URL(res.headers.get("location") ?? "", base).toString());
      continue;
    }
    const html = await res.text();
    if (html.includes('action="/login"')) {
      res = await browser.postForm(`${base}/login`, {
        request: formField(html, "request"),
        csrf: formField(html, "csrf"),
        ...login,
      });
      continue;
    }
    if (!html.includes('action="/device"'))
      throw new Error(`unexpected page ${res.status}: ${html.slice(0, 400)}`);
    return { status: res.status, html, csrf: formField(html, "csrf") };
  }
  throw new Error("too many steps to the device page");
}

/** Types a code on the device page: the consent page, or the form again with an error. */
export async function enterCode(
  base: string,
  browser: Browser,
  csrf: string,
  userCode: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; html: string; headers: Headers }> {
  const res = await browser.postForm(`${base}/device`, { csrf, user_code: userCode }, headers);
  return { status: res.status, html: await res.text(), headers: res.headers };
}

/** Answers the consent page for `userCode`. */
export async function answerDevice(
  base: string,
  browser: Browser,
  csrf: string,
  userCode: string,
  decision: "allow" | "deny",
): Promise<{ status: number; html: string }> {
  const res = await browser.postForm(`${base}/device/consent`, { csrf, user_code: userCode, decision });
  return { status: res.status, html: await res.text() };
}

/** The whole person's side: sign in, type the code, answer. */
export async function approveDevice(
  base: string,
  codes: DeviceCodes,
  login: { username: string; password: string },
  decision: "allow" | "deny" = "allow",
): Promise<void> {
  const browser = new Browser();
  const { csrf } = await openDevicePage(base, browser, codes.verification_uri, login);
  const consent = await enterCode(base, browser, csrf, codes.user_code);
  if (consent.status !== 200)
    throw new Error(`code refused: ${consent.status} ${consent.html.slice(0, 300)}`);
  const answered = await answerDevice(base, browser, csrf, codes.user_code, decision);
  if (answered.status !== 200)
    throw new Error(`answer refused: ${answered.status} ${answered.html.slice(0, 300)}`);
}
