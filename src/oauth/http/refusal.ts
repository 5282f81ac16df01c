/**
 * A login the provider vouched for but the gateway's allowlist refuses (idp.checkAccess): the
 * person gets a page that names the rule and offers another account, and the client waiting on
 * its redirect URI gets `error=access_denied` with the same reason (RFC 6749 §4.1.2.1), so a CLI
 * login ends at once instead of waiting out its timeout. The pending request stays until it
 * expires, so "Use another account" can finish it.
 */
import type { FastifyReply } from "fastify";
import { publicPath } from "../../config/public-path.js";
import type { IdentityProvider, UserIdentity } from "../../idp/idp.js";
import { refusalPage } from "../../web/pages.js";
import { authorizationResponseUrl } from "../authorize.js";
import { isPageLogin, type PendingLogin } from "../interaction.js";
import type { AuthorizationServer } from "../server.js";
import { page } from "./error-handler.js";

/** Long enough to read one sentence and choose another account; short enough not to strand a client. */
export const BACK_TO_CLIENT_SECONDS = 10;

/** RFC 6749 §5.2: error_description is printable ASCII without `"` and `\`. */
function errorDescription(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, "?");
}

export async function refuseLogin(
  reply: FastifyReply,
  as: AuthorizationServer,
  idp: IdentityProvider,
  pending: PendingLogin,
  user: UserIdentity,
  reason: string,
): Promise<FastifyReply> {
  // A sign-in for one of the gateway's own pages has no client to tell.
  const back = isPageLogin(pending)
    ? undefined
    : {
        clientName: (await as.lookupClient(pending.client_id))?.client_name ?? pending.client_id,
        url: authorizationResponseUrl(pending.redirect_uri, as.issuer, {
          error: "access_denied",
          error_description: errorDescription(reason),
          state: pending.state,
        }),
        afterSeconds: BACK_TO_CLIENT_SECONDS,
      };
  return page(
    reply,
    403,
    refusalPage({
      user: user.login,
      reason,
      provider: idp.kind === "redirect" ? idp.displayName : undefined,
      anotherAccount: `${publicPath(as.issuer)}/login?request=${encodeURIComponent(pending.id)}`,
      back,
    }),
  );
}
