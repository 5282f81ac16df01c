/**
 * A person signed in to the gateway in the test's cookie-jar browser, for tests of the pages a
 * signed-in person sees (/account, grants, sign-out). The gateway signs people in only inside
 * an authorization, so this registers a client, starts one and posts the login form; the
 * consent and the redirect back to the client are not followed (no grant is made).
 */
import { authorizeUrl, Browser, formField, pkcePair, registerClient } from "./oauth-client.js";

export async function signedInBrowser(
  base: string,
  opts: { redirectUri: string; clientName: string; login: { username: string; password: string } },
): Promise<Browser> {
  const browser = new Browser();
  const client = await registerClient(base, {
    client_name: opts.clientName,
    redirect_uris: [opts.redirectUri],
  });
  let res = await browser.get(
    authorizeUrl(base, {
      client_id: client.client_id,
      redirect_uri: opts.redirectUri,
      code_challenge: pkcePair().challenge,
    }),
  );
  res = await browser.get(new URL(res.headers.get("location") as string, base).toString());
  const login = await res.text();
  await browser.postForm(`${base}/login`, {
    request: formField(login, "request"),
    csrf: formField(login, "csrf"),
    ...opts.login,
  });
  return browser;
}
