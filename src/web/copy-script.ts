/**
 * The only script any page runs: the copy buttons of the landing page. Pages otherwise forbid
 * scripts outright; this one is admitted by its SHA-256 hash in the page's CSP (CSP Level 2
 * hash sources), not by `'unsafe-inline'` or `'self'`: an injected script, or any script the
 * gateway's origin might serve, still does not run. It is a constant with no data in it (each
 * button names the element it copies), so the hash is computed once. Without scripts the buttons
 * stay hidden and the text is in a read-only field or block the person selects and copies.
 */
import { createHash } from "node:crypto";
import { PAGE_HEADERS } from "./pages.js";

export const COPY_SCRIPT = `for (const b of document.querySelectorAll("button[data-copy]")) {
  b.hidden = false;
  b.addEventListener("click", () => {
    const t = document.getElementById(b.dataset.copy);
    if (!t) return;
    const text = "value" in t ? t.value : t.textContent;
    const done = (label) => { b.textContent = label; setTimeout(() => { b.textContent = "Copy"; }, 2000); };
    navigator.clipboard.writeText(text).then(() => done("Copied"), () => {
      if ("select" in t) t.select(); else getSelection().selectAllChildren(t);
      done("Press Ctrl+C");
    });
  });
}`;

const hash = createHash("sha256").update(COPY_SCRIPT, "utf8").digest("base64");

/** PAGE_HEADERS with the copy script, and nothing else, allowed to run. */
export const COPY_PAGE_HEADERS = {
  ...PAGE_HEADERS,
  "content-security-policy": PAGE_HEADERS["content-security-policy"].replace(
    "default-src 'none';",
    `default-src 'none'; script-src 'sha256-${hash}';`,
  ),
} as const;
