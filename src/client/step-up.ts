/**
 * Step-up authorization for `connect` (MCP authorization, scope challenges): when the server
 * answers 403 `insufficient_scope` with the scopes it needs, log in again asking for the union
 * of those and the scopes this login already holds (a refresh cannot widen a grant, RFC 6749
 * §6), then retry the request once. It needs a person at a browser, so stderr says so and
 * where to go; nobody coming within the timeout fails the request with what to run instead.
 * Bounded: one re-authorization per request, never twice for the same scopes, and one at a
 * time (requests that need it meanwhile wait for it).
 *
 * The same browser step serves a login the server no longer accepts (revoked, or the URL moved
 * to another authorization server, SEP-2352), when no refresh can mend it (`relogin`).
 */
import {
  computeScopeUnion,
  InsufficientScopeError,
  isStrictScopeSuperset,
} from "@modelcontextprotocol/client";
import type { CredentialStore } from "./credentials.js";
import { login } from "./login.js";
import { openBrowser } from "./open-browser.js";
import { LoginRequiredError } from "./provider.js";

export interface StepUpOptions {
  store: CredentialStore;
  serverUrl: string;
  /** Diagnostics (stderr). */
  log(message: string): void;
  /** Open the system browser (besides printing the URL). */
  browser: boolean;
  /** How long to wait for the person. */
  timeoutMs: number;
}

/** The InsufficientScopeError in `err` or its causes, if any. */
function insufficientScope(err: unknown, depth = 0): InsufficientScopeError | undefined {
  if (err instanceof InsufficientScopeError) return err;
  if (err instanceof Error && depth < 5) return insufficientScope(err.cause, depth + 1);
  return undefined;
}

/** New logins (not step-ups) one `connect` run asks a person for before it gives up. */
const MAX_RELOGINS = 2;

export class StepUp {
  private running?: Promise<void>;
  private readonly asked = new Set<string>();
  private relogins = 0;

  constructor(private readonly options: StepUpOptions) {}

  /** Runs `attempt`; on a scope challenge, re-authorizes and runs it once more. */
  async run<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (err) {
      const challenge = insufficientScope(err);
      if (!challenge) throw err;
      await this.reauthorize(challenge);
      try {
        return await attempt();
      } catch (again) {
        const still = insufficientScope(again);
        if (!still) throw again;
        throw new Error(
          `${this.options.serverUrl} still needs the scope ${still.requiredScope ?? "(unnamed)"} after a new authorization: the authorization server did not grant it`,
        );
      }
    }
  }

  /**
   * A new login when the server refuses the token and no refresh helps (revoked, no refresh
   * token, another authorization server now): the same browser step, at most twice per run.
   */
  async relogin(why: LoginRequiredError): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    const { serverUrl, log } = this.options;
    if (this.relogins >= MAX_RELOGINS) throw why;
    this.relogins++;
    const reason = why.message.replace(/; run: mcp-gateway login .*$/, "");
    log(`connect: ${serverUrl} refuses the access token and ${reason}; a new login needs a browser.`);
    try {
      await this.browserLogin();
    } catch (err) {
      throw new LoginRequiredError(
        serverUrl,
        `${reason}, and the new login failed (${(err as Error).message})`,
      );
    }
  }

  /** One login at a time; what waits for it is told on stderr where to go. */
  private async browserLogin(scope?: string): Promise<void> {
    const { store, serverUrl, log } = this.options;
    this.running = login(serverUrl, {
      store,
      timeoutMs: this.options.timeoutMs,
      scope,
      onAuthorizationUrl: (url) => {
        log(`Open this URL in a browser to grant it:\n\n  ${url.href}\n`);
        if (this.options.browser) openBrowser(url.href);
      },
    }).then(() => undefined);
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private async reauthorize(challenge: InsufficientScopeError): Promise<void> {
    // Another request is already getting a new authorization: it may bring what this one needs.
    while (this.running) await this.running.catch(() => undefined);
    const { store, serverUrl, log } = this.options;
    const held = store.get(serverUrl)?.tokens?.scope;
    const wanted = computeScopeUnion(held, challenge.requiredScope);
    if (!wanted || !isStrictScopeSuperset(wanted, held)) return; // Nothing more to ask for: the retry decides.
    const hint = `run: mcp-gateway login ${serverUrl} --scope "${wanted}"`;
    const needed = challenge.requiredScope ?? wanted;
    if (this.asked.has(wanted)) {
      throw new Error(`${serverUrl} needs the scope ${needed}, which was asked for and not granted; ${hint}`);
    }
    this.asked.add(wanted);
    log(
      `connect: ${serverUrl} needs the scope ${needed} (it answered 403 insufficient_scope); asking for "${wanted}" needs a browser.`,
    );
    try {
      await this.browserLogin(wanted);
    } catch (err) {
      throw new Error(
        `${serverUrl} needs the scope ${needed}, and the new authorization failed (${(err as Error).message}); ${hint}`,
      );
    }
  }
}
