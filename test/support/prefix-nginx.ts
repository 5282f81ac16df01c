/**
 * nginx for a gateway at a sub-path of a shared host: README's block ("At a sub-path of a
 * shared host", under "Behind a reverse proxy"), as an operator copies it, in a server whose
 * every other path is another application's. {{GATEWAY}} is the gateway's own URL.
 */
import { nginxServerConf } from "./proxies.js";
import { fencedBlocks, readmePart } from "./readme-snippets.js";

function readmeLocations(): string {
  const block = fencedBlocks(readmePart("Behind a reverse proxy")).find(
    (b) => b.section === "At a sub-path of a shared host" && b.lang === "nginx",
  );
  if (!block) throw new Error('README.md: no nginx block under "At a sub-path of a shared host"');
  return block.body;
}

/** The nginx.conf template for startNginxWith (PORT, GATEWAY). */
export function prefixNginxConf(): string {
  return nginxServerConf(`
${readmeLocations().replaceAll("http://127.0.0.1:8080", "{{GATEWAY}}")}
    location / { return 404 "another application"; }`);
}
