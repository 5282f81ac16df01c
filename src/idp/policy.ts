/**
 * Access policy: allowed_users / allowed_orgs / allowed_teams / allowed_emails. A person is
 * allowed when they match any configured list. Used for the provider-wide allowlist and for
 * each service's own policy.
 */
import type { AccessPolicy } from "../config/schema.js";
import type { AccessDecision, UserIdentity } from "./idp.js";

const norm = (s: string) => s.trim().toLowerCase();

/** True when the policy names no one, i.e. places no restriction of its own. */
export function isOpenPolicy(policy: AccessPolicy): boolean {
  return ![policy.allowed_users, policy.allowed_orgs, policy.allowed_teams, policy.allowed_emails].some(
    (list) => list && list.length > 0,
  );
}

function emailMatches(pattern: string, email: string): boolean {
  const p = norm(pattern);
  // "@example.com" or "*@example.com" admits a whole domain.
  if (p.startsWith("@") || p.startsWith("*@")) return email.endsWith(p.slice(p.indexOf("@")));
  return p === email;
}

/**
 * Evaluates a policy. `whenEmpty` is the answer for a policy that names no one: services are
 * open to every logged-in user, while a GitHub login with no allowlist admits nobody.
 */
export function evaluatePolicy(
  policy: AccessPolicy,
  user: Pick<UserIdentity, "login" | "email" | "groups">,
  whenEmpty: AccessDecision = { allowed: true },
): AccessDecision {
  if (isOpenPolicy(policy)) return whenEmpty;
  const login = norm(user.login);
  const groups = new Set((user.groups ?? []).map(norm));
  const email = user.email ? norm(user.email) : undefined;
  if (policy.allowed_users?.some((u) => u.trim() === "*" || norm(u) === login)) return { allowed: true };
  if (policy.allowed_orgs?.some((o) => groups.has(norm(o)))) return { allowed: true };
  if (policy.allowed_teams?.some((t) => groups.has(norm(t)))) return { allowed: true };
  if (email && policy.allowed_emails?.some((e) => emailMatches(e, email))) return { allowed: true };
  return { allowed: false, reason: refusal(policy, user.login) };
}

/** What each list asks of a person, as the refusal says they are not. */
const RULES: Array<[keyof AccessPolicy, string]> = [
  ["allowed_users", "on the list of allowed users"],
  ["allowed_orgs", "a member of an allowed organisation"],
  ["allowed_teams", "in an allowed team"],
  ["allowed_emails", "using an allowed email address"],
];

/**
 * Which rules refused: every configured one (any would have admitted the person). Names the
 * kinds of rule, never their entries: the refused person does not learn who is allowed.
 */
function refusal(policy: AccessPolicy, login: string): string {
  const failed = RULES.filter(([key]) => policy[key]?.length).map(([, text]) => text);
  const last = failed.pop() as string;
  if (failed.length === 0) return `${login} is not ${last}`;
  return `${login} is not ${failed.join(", not ")}${failed.length > 1 ? "," : ""} and not ${last}`;
}
