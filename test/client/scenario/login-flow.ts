/** `mcp-gateway login` against a scenario server, with the person approving at once. */
import { authorizationUrlOf, type CliOptions, type CliRun, startCli } from "../cli-process.js";
import { approveInBrowser } from "./oauth-scenario.js";

export interface ScenarioLogin {
  run: CliRun;
  code: number | null;
  authorizationUrl: URL;
  /** The loopback receiver's answer to the browser. */
  landing?: Response;
}

/** Spawns `login URL --no-browser ...extra`, approves in the "browser", waits for the exit. */
export async function loginApproving(
  url: string,
  clientDir: string,
  extra: string[] = [],
  options: CliOptions = {},
): Promise<ScenarioLogin> {
  const run = startCli(["login", url, "--no-browser", "--timeout", "20s", ...extra], clientDir, options);
  const authorizationUrl = await authorizationUrlOf(run);
  const landing = await approveInBrowser(authorizationUrl).catch(() => undefined);
  return { run, code: await run.exited, authorizationUrl, landing };
}
