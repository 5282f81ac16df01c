/**
 * The landing page (`/`): what this is, the services (a signed-in person's own: those the
 * provider's allowlist and each service's policy admit), each URL with a copy button, and how
 * to connect a client, with the same snippets as `mcp-gateway config client` (snippets.ts), each
 * with its own copy button.
 */

import { COPY_SCRIPT } from "./copy-script.js";
import { html, layout, type Safe } from "./pages.js";
import { allSnippets, type Snippet } from "./snippets.js";

export interface LandingService {
  name: string;
  url: string;
}

export interface LandingPageData {
  /** public_url's path ("" or "/gw"): the gateway's own links and form targets start with it. */
  base: string;
  /** The signed-in person's login; undefined when nobody is signed in. */
  user?: string;
  services: LandingService[];
  /** The service whose client snippets are shown. */
  selected?: LandingService;
}

/** `where` and notes mark code with backticks (snippets.ts): those spans become <code>. */
export function codeSpans(text: string): Safe[] {
  return text.split("`").map((part, i) => (i % 2 === 1 ? html`<code>${part}</code>` : html`${part}`));
}

/** A copy button for the element `id`; hidden until the script shows it (no script, no dead button). */
const copyButton = (id: string, label: string) =>
  html`<button type="button" class="small secondary" data-copy="${id}" aria-label="${label}" hidden>Copy</button>`;

function serviceItem(s: LandingService, base: string): Safe {
  const id = `url-${s.name}`;
  return html`<li><strong>${s.name}</strong>
<div class="copy"><input id="${id}" type="text" readonly value="${s.url}" aria-label="MCP URL of ${s.name}">${copyButton(id, `Copy the URL of ${s.name}`)}</div>
<a href="${base}/?service=${encodeURIComponent(s.name)}#connect">How to connect a client to ${s.name}</a></li>`;
}

function snippetItem(s: Snippet, open: boolean): Safe {
  const id = `snippet-${s.client}`;
  return html`<details${open ? html` open` : undefined}><summary>${s.title}</summary>
<p>Where: ${codeSpans(s.where)}. <a href="${s.docs}" rel="noreferrer">The format</a>.</p>
<pre id="${id}">${s.text.trimEnd()}</pre>${copyButton(id, `Copy the ${s.title} configuration`)}
${s.notes.length ? html`<ul>${s.notes.map((n) => html`<li>${codeSpans(n)}</li>`)}</ul>` : undefined}</details>`;
}

export function landingPage(d: LandingPageData): string {
  const nav = d.user
    ? html`<nav><span>Signed in as <strong id="user">${d.user}</strong></span><a href="${d.base}/account">Your applications</a><a href="${d.base}/logout">Sign out</a></nav>`
    : html`<nav><a href="${d.base}/signin?next=/" id="sign-in">Sign in</a></nav>`;
  const services = !d.user
    ? html`<p id="services">Sign in to see the services you may use, with their URLs.</p>`
    : d.services.length
      ? html`<ul class="cards" id="services">${d.services.map((s) => serviceItem(s, d.base))}</ul>`
      : html`<p id="services">There is no service you may use here; ask whoever runs this gateway.</p>`;
  const connect = d.selected
    ? html`<h2 id="connect">Connect a client to ${d.selected.name}</h2>
<p class="muted">Pick your client. Each signs you in here the first time it connects.</p>
${allSnippets(d.selected.url, d.selected.name).map((s, i) => snippetItem(s, i === 0))}`
    : undefined;
  return layout(
    "MCP services",
    html`${nav}<h1>MCP gateway</h1>
<p>This gateway puts a sign-in in front of MCP servers. Give an MCP client (Claude, ChatGPT, Cursor, VS Code and others) a service's URL: the client sends you here to sign in once, and then uses that service for you.</p>
<h2>${d.user ? "Your services" : "Services"}</h2>
${services}
${connect}`,
    { wide: true, script: COPY_SCRIPT },
  );
}
