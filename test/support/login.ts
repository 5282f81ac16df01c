/** One call to get a real access token from a running gateway: register, log in, consent, exchange. */
import {
  authorizeWithLocalLogin,
  Browser,
  pkcePair,
  REDIRECT_URI,
  registerClient,
  tokenRequest,
} from "./oauth-client.js";

export async function accessTokenFor(
  base: string,
  resources: string[],
  login: { username: string; password: string },
  /** Scopes to ask for (default: what the resources need). */
  scope?: string,
): Promise<{ accessToken: string; refreshToken?: string; clientId: string }> {
  const client = await registerClient(base);
  const { verifier, challenge } = pkcePair();
  const back = await authorizeWithLocalLogin(
    base,
    new Browser(),
    {
      client_id: client.client_id,
      code_challenge: challenge,
      resource: resources,
      ...(scope ? { scope } : {}),
    },
    login,
  );
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`no code: ${back}`);
  const tokens = await tokenRequest(base, {
    grant_type: "authorization_code",
    client_id: client.client_id,
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
  });
  if (tokens.status !== 200) throw new Error(`token exchange failed: ${JSON.stringify(tokens.body)}`);
  return {
    accessToken: tokens.body.access_token as string,
    refreshToken: tokens.body.refresh_token as string | undefined,
    clientId: client.client_id,
  };
}
