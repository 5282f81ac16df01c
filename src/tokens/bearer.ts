/**
 * The one reading of `Authorization: Bearer …` (RFC 6750 §2.1), for the resource side and the
 * authorization server's bearer-protected endpoints (registration management) alike.
 */

/**
 * The token of a Bearer header: `undefined` when there is no Authorization header at all (the
 * first step of discovery), `null` when there is one but it is not a usable Bearer credential.
 * The scheme is case-insensitive; the token is one b64token, so it holds no spaces. No regex
 * over the whole token on the hot path: the signature check refuses anything else.
 */
export function bearerToken(authorization: string | undefined): string | undefined | null {
  if (authorization === undefined) return undefined;
  if (authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== "bearer ") return null;
  const token = authorization.slice(7).trim();
  return token === "" || token.includes(" ") ? null : token;
}
