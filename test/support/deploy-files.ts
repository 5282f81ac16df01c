/**
 * Reading the deployment files as their engines do, for tests that run them on a host without a
 * container engine: a Dockerfile's runtime stage (dockerfile-ast), a compose file with its .env
 * (the compose specification's interpolation and env-file rules, implemented here), and a
 * systemd unit file (systemd.syntax(7): sections, `Key=value`, repeated keys, `\` line joins).
 */
import { readFileSync } from "node:fs";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { parse as parseYaml } from "yaml";

// ─── Dockerfile ──────────────────────────────────────────────────────────────────────────────

export interface DockerStage {
  name: string | undefined;
  /** ENV in order, `$VAR`/`${VAR}` expanded against earlier ENV and then `baseEnv`. */
  env: Record<string, string>;
  workdir: string | undefined;
  user: string | undefined;
  expose: string[];
  volumes: string[];
  args: Record<string, string | undefined>;
  /** The exec-form command of HEALTHCHECK, and its flags (interval, timeout, …). */
  healthcheck: { argv: string[]; flags: Record<string, string> } | undefined;
  /** ENTRYPOINT + CMD, exec form. */
  entrypoint: string[];
  cmd: string[];
  /** Every RUN, as written (shell form). */
  runs: string[];
  /** `COPY --from=…` sources and targets. */
  copies: Array<{ from: string | undefined; sources: string[]; target: string }>;
}

function execForm(instruction: Instruction, text: string): string[] {
  const trimmed = text.trim();
  if (!trimmed.startsWith("[")) {
    throw new Error(`${instruction.getKeyword()} is in shell form; the tests expect the exec form: ${text}`);
  }
  return JSON.parse(trimmed) as string[];
}

function expandDockerVars(value: string, scope: Record<string, string | undefined>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a, b) => {
    return scope[(a ?? b) as string] ?? "";
  });
}

/** The stages of a Dockerfile; `baseEnv` stands for the base image's environment (PATH). */
export function readDockerfile(path: string, baseEnv: Record<string, string> = {}): DockerStage[] {
  const file = DockerfileParser.parse(readFileSync(path, "utf8"));
  const stages: DockerStage[] = [];
  let stage: DockerStage | undefined;
  for (const instruction of file.getInstructions()) {
    const keyword = instruction.getKeyword();
    const content = instruction.getArgumentsContent() ?? "";
    if (keyword === "FROM") {
      const args = instruction.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toUpperCase() === "AS");
      stage = {
        name: as >= 0 ? args[as + 1] : undefined,
        env: {},
        workdir: undefined,
        user: undefined,
        expose: [],
        volumes: [],
        args: {},
        healthcheck: undefined,
        entrypoint: [],
        cmd: [],
        runs: [],
        copies: [],
      };
      stages.push(stage);
      continue;
    }
    if (!stage) continue;
    const scope = { ...baseEnv, ...stage.args, ...stage.env };
    switch (keyword) {
      case "ENV":
        for (const property of (instruction as unknown as EnvLike).getProperties()) {
          stage.env[property.getName()] = expandDockerVars(property.getValue() ?? "", {
            ...baseEnv,
            ...stage.args,
            ...stage.env,
          });
        }
        break;
      case "ARG": {
        const [name, value] = content.trim().split("=", 2);
        if (name) stage.args[name] = value;
        break;
      }
      case "WORKDIR":
        stage.workdir = expandDockerVars(content.trim(), scope);
        break;
      case "USER":
        stage.user = content.trim();
        break;
      case "EXPOSE":
        stage.expose.push(...content.trim().split(/\s+/));
        break;
      case "VOLUME":
        stage.volumes.push(
          ...(content.trim().startsWith("[")
            ? (JSON.parse(content) as string[])
            : content.trim().split(/\s+/)),
        );
        break;
      case "HEALTHCHECK": {
        const flags: Record<string, string> = {};
        for (const flag of (instruction as unknown as FlagsLike).getFlags()) {
          flags[flag.getName()] = flag.getValue() ?? "";
        }
        const command = content.replace(/^(\s*--[a-z-]+=\S+\s+)*/, "").trim();
        if (!command.startsWith("CMD")) throw new Error(`HEALTHCHECK without CMD: ${content}`);
        stage.healthcheck = { argv: execForm(instruction, command.slice(3)), flags };
        break;
      }
      case "ENTRYPOINT":
        stage.entrypoint = execForm(instruction, content);
        break;
      case "CMD":
        stage.cmd = execForm(instruction, content);
        break;
      case "RUN":
        stage.runs.push(content.replace(/\\\n/g, " ").replace(/\s+/g, " ").trim());
        break;
      case "COPY": {
        const args = instruction.getArguments().map((a) => a.getValue());
        const from = (instruction as unknown as FlagsLike)
          .getFlags()
          .find((f) => f.getName() === "from")
          ?.getValue();
        stage.copies.push({ from: from ?? undefined, sources: args.slice(0, -1), target: args.at(-1) ?? "" });
        break;
      }
    }
  }
  return stages;
}

interface EnvLike {
  getProperties(): Array<{ getName(): string; getValue(): string | null }>;
}
interface FlagsLike {
  getFlags(): Array<{ getName(): string; getValue(): string | null }>;
}

// ─── compose: .env files and interpolation ───────────────────────────────────────────────────

/**
 * A compose `.env` file: `#` comment lines, `[export ]NAME=value`; unquoted values lose an
 * inline ` #…` comment and surrounding blanks and are interpolated; '…' is literal; "…" takes
 * the escapes \n \t \\ \" and is interpolated. Earlier lines are visible to later ones.
 */
export function parseEnvFile(text: string, outer: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=(.*))?$/.exec(line);
    if (!m) throw new Error(`not a NAME=value line: ${raw}`);
    const name = m[1] as string;
    const rest = m[2];
    if (rest === undefined) {
      if (outer[name] !== undefined) out[name] = outer[name];
      continue;
    }
    const value = rest.trimStart();
    const scope = { ...outer, ...out };
    if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      if (end < 0) throw new Error(`unterminated quote: ${raw}`);
      out[name] = value.slice(1, end);
    } else if (value.startsWith('"')) {
      let i = 1;
      let s = "";
      for (; i < value.length && value[i] !== '"'; i++) {
        if (value[i] === "\\" && i + 1 < value.length) {
          const next = value[++i] as string;
          s += ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[next] ?? next;
        } else s += value[i];
      }
      if (i >= value.length) throw new Error(`unterminated quote: ${raw}`);
      out[name] = interpolate(s, scope);
    } else {
      out[name] = interpolate(value.replace(/\s+#.*$/, "").trim(), scope);
    }
  }
  return out;
}

/**
 * Compose interpolation of one string: `$$` is `$`; `$VAR`, `${VAR}`; `${VAR:-default}` (unset
 * or empty), `${VAR-default}` (unset); `${VAR:?message}`, `${VAR?message}` (an error); `${VAR:+alt}`,
 * `${VAR+alt}`. Defaults may themselves hold `${…}`.
 */
export function interpolate(text: string, vars: Record<string, string | undefined>): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      let depth = 1;
      let j = i + 2;
      for (; j < text.length && depth > 0; j++) {
        if (text[j] === "{") depth++;
        else if (text[j] === "}") depth--;
      }
      if (depth !== 0) throw new Error(`unterminated \${ in: ${text}`);
      out += expandBraced(text.slice(i + 2, j - 1), vars);
      i = j;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (m) {
      out += vars[m[0]] ?? "";
      i += 1 + m[0].length;
      continue;
    }
    out += "$";
    i++;
  }
  return out;
}

function expandBraced(body: string, vars: Record<string, string | undefined>): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([\s\S]*))?$/.exec(body);
  if (!m) throw new Error(`invalid interpolation: \${${body}}`);
  const [, name, colon, op, arg = ""] = m as unknown as [string, string, string, string | undefined, string];
  const value = vars[name];
  const missing = colon ? value === undefined || value === "" : value === undefined;
  switch (op) {
    case undefined:
      return value ?? "";
    case "-":
      return missing ? interpolate(arg, vars) : (value as string);
    case "?":
      if (missing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
      return value as string;
    case "+":
      return missing ? "" : interpolate(arg, vars);
    default:
      throw new Error(`invalid interpolation: \${${body}}`);
  }
}

function interpolateTree(node: unknown, vars: Record<string, string | undefined>): unknown {
  if (typeof node === "string") return interpolate(node, vars);
  if (Array.isArray(node)) return node.map((n) => interpolateTree(n, vars));
  if (node && typeof node === "object") {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateTree(v, vars)]));
  }
  return node;
}

export interface ComposeService {
  image?: string;
  build?: { context: string; args?: Record<string, string> };
  command?: string[];
  environment: Record<string, string>;
  volumes: string[];
  ports: string[];
  networks: string[];
  init?: boolean;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  [key: string]: unknown;
}

export interface ComposeProject {
  name?: string;
  services: Record<string, ComposeService>;
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }>;
  volumes?: Record<string, unknown>;
}

/** A compose file with every value interpolated from `vars` (the .env file, then the shell). */
export function readCompose(path: string, vars: Record<string, string>): ComposeProject {
  const tree = interpolateTree(parseYaml(readFileSync(path, "utf8")), vars) as ComposeProject;
  for (const service of Object.values(tree.services)) {
    const env = service.environment as unknown;
    // The list form `- NAME=value` is the mapping form written differently.
    if (Array.isArray(env)) {
      service.environment = Object.fromEntries(
        env.map((e: string) => [e.split("=")[0], e.slice(e.indexOf("=") + 1)]),
      );
    }
    service.environment ??= {};
    service.volumes ??= [];
    service.ports ??= [];
    service.networks ??= [];
    if (typeof service.command === "string") throw new Error("compose command in string form; use a list");
  }
  return tree;
}

// ─── systemd unit files ──────────────────────────────────────────────────────────────────────

export type UnitFile = Record<string, Array<[string, string]>>;

/** Sections of `Key=value` pairs, in order, repeated keys kept; comments (#, ;) dropped. */
export function parseUnitFile(text: string): UnitFile {
  const unit: UnitFile = {};
  let section: Array<[string, string]> | undefined;
  const lines = text.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = unit[header[1] as string] ??= [];
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq <= 0) throw new Error(`not a unit-file line: ${raw}`);
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** The last value of a key in a section (systemd: a later assignment wins). */
export function unitValue(unit: UnitFile, section: string, key: string): string | undefined {
  return unit[section]?.filter(([k]) => k === key).at(-1)?.[1];
}

/** Every value of a key in a section; an empty assignment resets the list, as systemd does. */
export function unitValues(unit: UnitFile, section: string, key: string): string[] {
  const out: string[] = [];
  for (const [k, v] of unit[section] ?? []) {
    if (k !== key) continue;
    if (v === "") out.length = 0;
    else out.push(v);
  }
  return out;
}
