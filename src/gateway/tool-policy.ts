/**
 * Per-tool policy (`services.NAME.tools`): a tool's own rule, or the `"*"` rule for tools not
 * named, decides who may call it. The service's policy has already admitted the caller; a rule
 * narrows that with the same lists (none = everyone the service admits) and may need scopes
 * more. A tool with no rule (no entry and no `"*"`) is as open as the service.
 */
import type { ServiceConfig, ToolRule } from "../config/schema.js";
import { evaluatePolicy } from "../idp/policy.js";
import type { AccessTokenClaims } from "../tokens/claims.js";

export type ToolDecision =
  | { allowed: true }
  /** The caller is admitted but the token lacks scopes: a new token with `needed` would do. */
  | { allowed: false; stepUp: true; missing: string[]; needed: string[] }
  | { allowed: false; stepUp: false; reason: string };

/** Who is calling, from the verified token. */
export interface ToolCaller {
  claims: AccessTokenClaims;
  scopes: ReadonlySet<string>;
}

export class ToolPolicy {
  private readonly rules: Map<string, ToolRule>;
  private readonly rest?: ToolRule;

  constructor(
    private readonly service: string,
    private readonly serviceScopes: readonly string[],
    rules: Record<string, ToolRule>,
  ) {
    this.rules = new Map(Object.entries(rules).filter(([name]) => name !== "*"));
    this.rest = rules["*"];
  }

  /** The policy of a service, or undefined when it has none (then nothing is inspected). */
  static of(name: string, service: ServiceConfig): ToolPolicy | undefined {
    return service.tools ? new ToolPolicy(name, service.scopes, service.tools) : undefined;
  }

  /** Whether `caller` may call `tool` now. */
  decide(tool: string, caller: ToolCaller): ToolDecision {
    const rule = this.rules.get(tool) ?? this.rest;
    if (!rule) return { allowed: true };
    const { claims } = caller;
    const admitted = evaluatePolicy(rule, {
      login: claims.preferred_username ?? claims.sub,
      email: claims.email,
      groups: claims.groups,
    });
    if (!admitted.allowed) {
      return {
        allowed: false,
        stepUp: false,
        reason: `The tool ${tool} of the service ${this.service} is not allowed for ${claims.preferred_username ?? claims.sub}`,
      };
    }
    const missing = rule.scopes.filter((s) => !caller.scopes.has(s));
    if (missing.length > 0) {
      return {
        allowed: false,
        stepUp: true,
        missing,
        needed: [...new Set([...this.serviceScopes, ...rule.scopes])],
      };
    }
    return { allowed: true };
  }

  /**
   * Whether `tool` belongs in the caller's tools/list: when they may call it, or would with a
   * token carrying more scopes (a client must see a tool to call it and be asked to step up).
   */
  lists(tool: string, caller: ToolCaller): boolean {
    const decision = this.decide(tool, caller);
    return decision.allowed || decision.stepUp;
  }
}
