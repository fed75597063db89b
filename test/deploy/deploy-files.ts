/**
 * Readers for the files under deploy/, for tests on machines without a Docker engine: the Dockerfile's
 * stages and instructions, docker-compose.yml with compose's variable interpolation and YAML merge keys,
 * and the .env example.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const deployDir = join(repoRoot, 'deploy');

export interface DockerInstruction {
  keyword: string;
  args: string;
}

export interface DockerStage {
  image: string;
  name: string | undefined;
  instructions: DockerInstruction[];
}

/** The Dockerfile's build stages, in order; line continuations joined, comments dropped. */
export function readDockerfile(path = join(deployDir, 'Dockerfile')): DockerStage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === 'FROM') {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!from) throw new Error(`cannot read FROM ${args}`);
      stages.push({ image: from[1]!, name: from[2], instructions: [] });
    } else if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`${keyword} before the first FROM`);
    } else {
      stages.at(-1)!.instructions.push({ keyword, args });
    }
  }
  return stages;
}

/** An exec-form command (`["node", "x.js"]`); the shell form is refused (the shell would be PID 1 and swallow SIGTERM). */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec-form command: ${args}`);
  return parsed as string[];
}

/** The last instruction of a kind in a stage (the one Docker uses for CMD, USER, WORKDIR, HEALTHCHECK). */
export function lastOf(stage: DockerStage, keyword: string): DockerInstruction | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1);
}

/** `ENV A=1 B=2` of a stage, in order. */
export function stageEnv(stage: DockerStage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.keyword === 'ENV')) {
    for (const pair of i.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`ENV ${i.args}: write ENV KEY=value`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** `KEY=value` lines of an env file (comments and blank lines skipped). */
export function readEnvFile(path = join(deployDir, '.env.example')): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${path}: cannot read "${line}"`);
    vars[m[1]!] = m[2]!;
  }
  return vars;
}

const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** The variables a compose file interpolates (`${X}`, `${X:-d}`, `${X:?msg}`, `$X`). */
export function composeVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(VARIABLE)) {
    const name = m[1] ?? m[4];
    if (name) names.add(name);
  }
  return names;
}

/** Compose's interpolation of one value: `:-`/`-` defaults, `:?`/`?` required (throws with the message), `$$` a dollar. */
export function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(VARIABLE, (whole, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
    if (whole === '$$') return '$';
    const name = (braced ?? bare)!;
    const v = vars[name];
    const unset = v === undefined;
    const empty = unset || v === '';
    switch (op) {
      case ':-':
        return empty ? arg! : v!;
      case '-':
        return unset ? arg! : v;
      case ':?':
        if (empty) throw new Error(`${name}: ${arg}`);
        return v!;
      case '?':
        if (unset) throw new Error(`${name}: ${arg}`);
        return v;
      default:
        return v ?? '';
    }
  });
}

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  expose?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
  profiles?: string[];
  secrets?: string[];
  depends_on?: Record<string, { condition: string; required?: boolean }> | string[];
  healthcheck?: { test: string[] };
  volumes?: string[];
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean; ipam?: { config: Array<{ subnet: string }> } } | null>;
  secrets?: Record<string, { file: string }>;
}

/** docker-compose.yml as compose reads it: YAML merge keys resolved (interpolation is per value, see `interpolate`). */
export function readCompose(path = join(deployDir, 'docker-compose.yml')): { text: string; file: ComposeFile } {
  const text = readFileSync(path, 'utf8');
  return { text, file: parseYaml(text, { merge: true }) as ComposeFile };
}

/** A service's environment after interpolation with `vars`, as the container sees it. */
export function serviceEnvironment(service: ComposeService, vars: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(v === null ? '' : String(v), vars)]));
}

/** Services that run the hub image (built from deploy/Dockerfile). */
export function hubServices(file: ComposeFile): Array<[string, ComposeService]> {
  return Object.entries(file.services).filter(([, s]) => s.build?.dockerfile === 'deploy/Dockerfile');
}
