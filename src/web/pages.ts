/**
 * The pages a person sees: login, consent, and errors. Every interpolated value is escaped by
 * the `html` tag; pages carry a strict CSP and may not be framed (clickjacking on consent).
 */
import escapeHtml from "escape-html";

/** A fragment already escaped, so it is inserted as is. */
export class Safe {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Value = string | number | undefined | null | Safe | Safe[];

function render(value: Value): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) return value.map((v) => v.value).join("");
  if (value instanceof Safe) return value.value;
  return escapeHtml(String(value));
}

/** Tagged template that escapes every interpolation unless it is already Safe. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Safe {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? "");
  });
  return new Safe(out);
}

/** Headers for every page: no framing, no scripts, nothing cached. */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
} as const;

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2430;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;max-width:28rem;width:100%;padding:2rem;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.3rem;margin:0 0 1rem}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #c5cad3;border-radius:6px;font-size:1rem}
button{padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f6feb;background:#1f6feb;color:#fff;font-size:1rem;cursor:pointer;margin-top:1rem}
button.secondary{background:#fff;color:#1d2430;border-color:#c5cad3}
a.button{display:inline-block;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f6feb;background:#1f6feb;color:#fff;text-decoration:none;margin-top:1rem}
a.button.secondary{background:#fff;color:#1d2430;border-color:#c5cad3}
.error{background:#fdecea;color:#8a1c12;padding:.6rem .8rem;border-radius:6px}
.muted{color:#5b6472;font-size:.9rem}
ul{padding-left:1.2rem}
code{background:#f0f1f4;padding:.1rem .3rem;border-radius:4px;word-break:break-all}
.actions{display:flex;gap:.75rem;flex-wrap:wrap;align-items:center}
main.wide{max-width:48rem;min-width:0}
nav{display:flex;gap:1rem;flex-wrap:wrap;font-size:.9rem;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
pre{background:#f0f1f4;padding:.75rem;border-radius:6px;overflow-x:auto;font-size:.85rem;margin:.5rem 0}
details{border-top:1px solid #e3e6eb;padding:.5rem 0}
summary{cursor:pointer;font-weight:600}
.cards{list-style:none;padding:0;margin:0}
.cards>li{border:1px solid #e3e6eb;border-radius:8px;padding:.75rem 1rem;margin:.75rem 0}
.copy{display:flex;gap:.5rem;align-items:center}
.copy input{flex:1;min-width:0;width:auto;font:inherit;font-size:.9rem;padding:.4rem;border:1px solid #c5cad3;border-radius:6px}
.copy button,button.small{margin-top:0;padding:.35rem .8rem;font-size:.9rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .75rem;margin:.5rem 0}
dt{color:#5b6472}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
`;

export interface LayoutOptions {
  /** Extra elements for <head> (the refusal page's refresh). */
  head?: Safe;
  /** Room for snippets and lists (the landing and account pages). */
  wide?: boolean;
  /** An inline script the page's CSP admits by its hash (copy-script.ts), at the end of <body>. */
  script?: string;
}

export function layout(title: string, body: Safe, options: LayoutOptions = {}): string {
  const script = options.script ? html`<script>${new Safe(options.script)}</script>` : undefined;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · MCP gateway</title><style>${new Safe(STYLE)}</style>${options.head}</head>
<body><main${options.wide ? new Safe(' class="wide"') : undefined}>${body}</main>${script}</body></html>`
    .value;
}

export function errorPage(title: string, detail: string): string {
  return layout(
    title,
    html`<h1>${title}</h1><p class="error" role="alert">${detail}</p>
<p class="muted">You can close this window and start again from your application.</p>`,
  );
}

export interface LoginPageData {
  /** public_url's path ("" or "/gw"): the gateway's own links and form targets start with it. */
  base: string;
  request: string;
  csrf: string;
  /** The application that asked; undefined for a sign-in to the gateway's own pages. */
  clientName?: string;
  error?: string;
  username?: string;
}

export function loginPage(d: LoginPageData): string {
  return layout(
    "Sign in",
    html`<h1>Sign in to continue</h1>
${
  d.clientName
    ? html`<p class="muted"><strong>${d.clientName}</strong> wants to use your MCP services through this gateway.</p>`
    : html`<p class="muted">Sign in to see your services and the applications you allowed.</p>`
}
${d.error ? html`<p class="error" role="alert">${d.error}</p>` : undefined}
<form method="post" action="${d.base}/login">
<input type="hidden" name="request" value="${d.request}"><input type="hidden" name="csrf" value="${d.csrf}">
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" value="${d.username ?? ""}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

export interface ConsentPageData {
  /** public_url's path ("" or "/gw"): the gateway's own links and form targets start with it. */
  base: string;
  request: string;
  csrf: string;
  clientName: string;
  clientId: string;
  /** Host (or scheme, for native apps) the answer goes back to. */
  redirectHost: string;
  /** Whether the client registered itself (dynamic registration or a metadata document). */
  unverified: boolean;
  user: string;
  services: string[];
  scopes: string[];
}

export function consentPage(d: ConsentPageData): string {
  const services = d.services.length
    ? html`<ul>${d.services.map((s) => html`<li>${s}</li>`)}</ul>`
    : html`<p>every service behind this gateway</p>`;
  return layout(
    "Allow access?",
    html`<h1>Allow <span id="client-name">${d.clientName}</span> to act as ${d.user}?</h1>
<p>It will be able to use:</p>${services}
${d.scopes.length ? html`<p>with the permissions: ${d.scopes.map((s) => html`<code>${s}</code> `)}</p>` : undefined}
<p class="muted">After you decide, you go back to <strong id="redirect-host">${d.redirectHost}</strong>.
${d.unverified ? html`This application registered itself; the gateway has not verified who made it. Only allow it if you started this sign-in.` : undefined}</p>
<p class="muted">Client ID: <code>${d.clientId}</code></p>
<form method="post" action="${d.base}/consent">
<input type="hidden" name="request" value="${d.request}"><input type="hidden" name="csrf" value="${d.csrf}">
<div class="actions"><button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny" class="secondary">Deny</button></div>
</form>`,
  );
}

/** A page that tells how something ended well (the error page's counterpart). */
export function noticePage(title: string, detail: string): string {
  return layout(
    title,
    html`<h1 id="notice-title">${title}</h1><p role="status">${detail}</p>
<p class="muted">You can close this window.</p>`,
  );
}

export interface DeviceCodePageData {
  /** public_url's path ("" or "/gw"): the gateway's own links and form targets start with it. */
  base: string;
  csrf: string;
  /** Who is signed in. */
  user: string;
  /** The code to fill in: the one a link carried (verification_uri_complete) or the one just typed. */
  userCode?: string;
  /** Whether the code came in the link rather than from the person (RFC 8628 §5.4). */
  fromLink?: boolean;
  error?: string;
}

/** /device: the person types the code their device shows (RFC 8628 §3.3). */
export function deviceCodePage(d: DeviceCodePageData): string {
  return layout(
    "Connect a device",
    html`<h1>Connect a device</h1>
<p>Type the code your device shows. You are signed in as <strong id="user">${d.user}</strong>.</p>
${d.error ? html`<p class="error" role="alert">${d.error}</p>` : undefined}
${d.fromLink ? html`<p class="muted" id="link-warning">This link came with a code already filled in. Continue only if the same code is on the screen of a device you are setting up yourself.</p>` : undefined}
<form method="post" action="${d.base}/device">
<input type="hidden" name="csrf" value="${d.csrf}">
<label for="user_code">Code</label><input id="user_code" name="user_code" type="text" value="${d.userCode ?? ""}" placeholder="XXXX-XXXX" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="20" required autofocus>
<button type="submit" id="continue">Continue</button>
</form>`,
  );
}

export interface DeviceConsentPageData {
  /** public_url's path ("" or "/gw"): the gateway's own links and form targets start with it. */
  base: string;
  csrf: string;
  /** The code in display form, XXXX-XXXX. */
  userCode: string;
  clientName: string;
  clientId: string;
  /** Whether the client registered itself (dynamic registration or a metadata document). */
  unverified: boolean;
  user: string;
  services: string[];
  scopes: string[];
}

/**
 * The device grant's consent: names the client and the services, and shows the code again for
 * the person to compare with their device's screen, since whoever started the request may not
 * be the person at this browser (RFC 8628 §5.4, remote phishing).
 */
export function deviceConsentPage(d: DeviceConsentPageData): string {
  const services = d.services.length
    ? html`<ul>${d.services.map((s) => html`<li>${s}</li>`)}</ul>`
    : html`<p>every service behind this gateway</p>`;
  return layout(
    "Allow this device?",
    html`<h1>Allow <span id="client-name">${d.clientName}</span> on a device to act as ${d.user}?</h1>
<p>Check that your device shows this code: <strong id="user-code">${d.userCode}</strong></p>
<p>It will be able to use:</p>${services}
${d.scopes.length ? html`<p>with the permissions: ${d.scopes.map((s) => html`<code>${s}</code> `)}</p>` : undefined}
<p class="error" role="note">Only allow this if you started this sign-in yourself, on a device you have with you. If someone sent you this code or link, deny.</p>
${d.unverified ? html`<p class="muted">This application registered itself; the gateway has not verified who made it.</p>` : undefined}
<p class="muted">Client ID: <code>${d.clientId}</code></p>
<form method="post" action="${d.base}/device/consent">
<input type="hidden" name="csrf" value="${d.csrf}"><input type="hidden" name="user_code" value="${d.userCode}">
<div class="actions"><button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny" class="secondary">Deny</button></div>
</form>`,
  );
}

export interface RefusalPageData {
  /** Who the provider said this is. */
  user: string;
  /** Which rule refused, as a sentence (idp/policy.ts). */
  reason: string;
  /** The provider, when it is one the person signs in to elsewhere ("GitHub"): they switch accounts there. */
  provider?: string;
  /** Starts the same sign-in again (`{base}/login?request=…`). */
  anotherAccount: string;
  /** The client's redirect URI with `error=access_denied`, when a client is waiting for the answer. */
  back?: { clientName: string; url: string; afterSeconds: number };
}

/**
 * The login provider vouched for someone the gateway does not admit. Says which rule refused,
 * offers another account, and hands the refusal to the waiting client by itself (a meta
 * refresh: no script, so the strict CSP stands) unless the person picks another account first.
 */
export function refusalPage(d: RefusalPageData): string {
  const body = html`<h1>Access denied</h1>
<p class="error" role="alert" id="refusal">${d.reason}.</p>
<p>You are signed in as <strong>${d.user}</strong>.${d.provider ? ` To use another account, sign out of ${d.provider} or switch accounts there first.` : ""}</p>
<div class="actions"><a class="button" id="another-account" href="${d.anotherAccount}">Use another account</a>
${d.back ? html`<a class="button secondary" id="back-to-client" href="${d.back.url}">Back to ${d.back.clientName}</a>` : undefined}</div>
${d.back ? html`<p class="muted">In ${d.back.afterSeconds} seconds you go back to ${d.back.clientName}, which is told that access was denied.</p>` : undefined}`;
  const refresh = d.back
    ? html`<meta http-equiv="refresh" content="${d.back.afterSeconds}; url=${d.back.url.replaceAll("'", "%27")}">`
    : undefined;
  return layout("Access denied", body, { head: refresh });
}
