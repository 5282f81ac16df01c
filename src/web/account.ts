/**
 * The signed-in person's pages: the applications they allowed (/account), each with Revoke,
 * and signing out (/logout). Every form carries the session's anti-CSRF token; the routes check
 * it and the same-origin rule (oauth/http/form-origin.ts).
 */
import { html, layout, type Safe } from "./pages.js";

export interface AccountGrantView {
  sid: string;
  clientName: string;
  clientId: string;
  /** Service names; empty = every service (a gateway-wide grant). */
  services: string[];
  /** Seconds since the epoch. */
  createdAt: number;
  /** When its tokens were last renewed (a refresh), or createdAt; seconds since the epoch. */
  lastUsedAt: number;
}

export interface AccountPageData {
  /** public_url's path ("" or "/gw"): the gateway's own links and form targets start with it. */
  base: string;
  user: string;
  csrf: string;
  grants: AccountGrantView[];
  /** One line of news after a form (a revocation). */
  notice?: string;
}

/** "2026-11-01 14:03 UTC", in a <time> element a browser or reader can take as it is. */
function when(seconds: number): Safe {
  const iso = new Date(seconds * 1000).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace("T", " ")} UTC</time>`;
}

const nav = (base: string) =>
  html`<nav><a href="${base}/">Services</a><a href="${base}/account">Your applications</a><a href="${base}/logout">Sign out</a></nav>`;

function grantItem(g: AccountGrantView, csrf: string, base: string): Safe {
  return html`<li data-sid="${g.sid}"><strong class="client-name">${g.clientName}</strong>
<dl><dt>Services</dt><dd>${g.services.length ? g.services.join(", ") : "every service"}</dd>
<dt>Allowed</dt><dd>${when(g.createdAt)}</dd>
<dt>Last used</dt><dd>${when(g.lastUsedAt)}</dd>
<dt>Client ID</dt><dd><code>${g.clientId}</code></dd></dl>
<form method="post" action="${base}/account/revoke"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="grant" value="${g.sid}">
<button type="submit" class="small" id="revoke-${g.sid}">Revoke</button></form></li>`;
}

export function accountPage(d: AccountPageData): string {
  const grants = d.grants.length
    ? html`<ul class="cards" id="grants">${d.grants.map((g) => grantItem(g, d.csrf, d.base))}</ul>`
    : html`<p id="grants">You have not allowed any application.</p>`;
  return layout(
    "Your applications",
    html`${nav(d.base)}<h1>Applications that act as <span id="user">${d.user}</span></h1>
${d.notice ? html`<p class="muted" role="status" id="notice">${d.notice}</p>` : undefined}
<p class="muted">Revoking ends an application's access at once: its tokens stop working, and it has to ask you again. “Last used” is when it last renewed its access (a refresh), or when you allowed it.</p>
${grants}
<form method="post" action="${d.base}/logout"><input type="hidden" name="csrf" value="${d.csrf}"><button type="submit" class="secondary" id="sign-out">Sign out of the gateway</button></form>`,
    { wide: true },
  );
}

/** /account or /logout without a session; `signIn` is a gateway path (`/signin?…`), under `base`. */
export function signedOutPage(title: string, detail: string, base: string, signIn?: string): string {
  return layout(
    title,
    html`<h1>${title}</h1><p>${detail}</p>
<div class="actions">${signIn ? html`<a class="button" id="sign-in" href="${base}${signIn}">Sign in</a>` : undefined}<a class="button secondary" href="${base}/">Services</a></div>`,
  );
}

export function logoutPage(d: { base: string; user: string; csrf: string }): string {
  return layout(
    "Sign out",
    html`<h1>Sign out of the gateway?</h1>
<p>You are signed in as <strong id="user">${d.user}</strong>. Signing out ends this browser's session here; applications you allowed keep their access (revoke them on <a href="${d.base}/account">Your applications</a>).</p>
<form method="post" action="${d.base}/logout"><input type="hidden" name="csrf" value="${d.csrf}">
<div class="actions"><button type="submit" id="sign-out">Sign out</button><a class="button secondary" href="${d.base}/">Cancel</a></div></form>`,
  );
}
