/**
 * Deleting the CLI's own dynamic registration (RFC 7592 §2.3): `DELETE registration_client_uri`
 * with the registration access token the server issued with it (RFC 7591 §3.2.1).
 */
import { fetchNamingFailures } from "./network.js";

/**
 * Deletes the registration at `uri`: "deleted" on 204, "gone" on 404 (the server no longer knows
 * the client, e.g. an admin deleted it). Anything else (a 401/403 refusing the token, a 5xx)
 * throws with the status, and the registration is to be kept: it may still work for logins.
 */
export async function deleteRegistration(
  uri: string,
  registrationToken: string,
): Promise<"deleted" | "gone"> {
  const res = await fetchNamingFailures(uri, {
    method: "DELETE",
    headers: { authorization: `Bearer ${registrationToken}` },
  });
  await res.body?.cancel();
  if (res.status === 204 || res.status === 200) return "deleted";
  if (res.status === 404) return "gone";
  let reason = `HTTP ${res.status}`;
  const challenge = res.headers.get("www-authenticate");
  if (challenge) reason += `, ${challenge}`;
  throw new Error(`the server refused to delete the registration (${reason})`);
}
