/**
 * What a person sees who opens a service's MCP URL in a browser: the gateway's 401 (its
 * WWW-Authenticate challenge unchanged, gateway/browser-page.ts) with a page instead of the
 * JSON-RPC error, saying this address is for MCP clients and how to connect one: an example
 * (Claude Code's command, from snippets.ts) and the landing page's snippets for this service.
 */
import { html, layout } from "./pages.js";
import { snippetFor } from "./snippets.js";

export interface EndpointPageData {
  service: string;
  /** The MCP URL the person opened. */
  url: string;
  /** The landing page's snippets for this service (`{public_url}/?service=NAME#connect`). */
  connect: string;
}

export function endpointPage(d: EndpointPageData): string {
  return layout(
    `${d.service}: MCP endpoint`,
    html`<h1>This is an MCP endpoint</h1>
<p>This address is for MCP clients (Claude, ChatGPT, Cursor, VS Code and others), not for a browser. Give it to your client:</p>
<p><code id="endpoint-url">${d.url}</code></p>
<p>The client asks you to sign in here the first time it connects. With Claude Code, for example:</p>
<pre id="example">${snippetFor("claude-code", d.url, d.service).text}</pre>
<div class="actions"><a class="button" id="how-to-connect" href="${d.connect}">How to connect your client</a></div>`,
    { wide: true },
  );
}
