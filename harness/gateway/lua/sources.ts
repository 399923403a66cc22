import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UsageError } from "../../errors.ts";
import { ownedTempDir, type OwnedDir } from "../../proc/index.ts";

/**
 * Where APISIX's Lua comes from for the `lua` engine, and which libraries go with it.
 * `--apisix DIR` is a git checkout of apache/apisix (versions are refs, read with `git archive`,
 * nothing in the checkout changes; `worktree` is the working tree as it is) or a folder of
 * `<version>/apisix/...` trees. A version may carry patches: `3.16.0+fix.diff` applies the diff
 * (`patch -p1`) to a temporary copy.
 */
export interface LuaSources {
  apisix: string;
  luaDeps: string;
}

export interface LuaTree {
  /** The version as given, e.g. `3.16.0+../fix.diff`. */
  name: string;
  /** The part before any `+patch`. */
  base: string;
  patches: string[];
  /** The directory that holds `apisix/`. */
  apisixRoot: string;
  /** Where the tree came from, for run records. */
  origin: string;
  healthcheck: { version: string; note?: string };
  /** lib/ folders of lua-resty-healthcheck, lua-resty-timer and lua-resty-balancer. */
  depDirs: string[];
}

/**
 * lua-resty-healthcheck-api7 as each release's rockspec pins it (apisix-<version>-0.rockspec at
 * the tag), for trees that come without a rockspec.
 */
const PINNED_HEALTHCHECK: Record<string, string> = { "3.15.0": "3.2.0", "3.16.0": "3.2.1", "3.17.0": "3.2.1", "3.18.0": "3.2.3" };

const tempDirs: OwnedDir[] = [];

/**
 * An owned temp dir (harness/proc): deleted when this process exits, and by the reaper when it
 * is killed (a test worker's exit hooks do not always run, and the trees were left behind).
 */
function tempDir(): string {
  const d = ownedTempDir("lua");
  tempDirs.push(d);
  return d.path;
}

/** Delete every tree this process exported or patched. */
export async function removeTempTrees(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((d) => d.remove()));
}

function git(dir: string, args: string[]): string {
  return execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
}

function isGitCheckout(dir: string): boolean {
  if (!existsSync(join(dir, "apisix"))) return false;
  return spawnSync("git", ["-C", dir, "rev-parse", "--is-inside-work-tree"], { encoding: "utf8" }).stdout.trim() === "true";
}

function versionOf(v: string): number[] {
  return v.replace(/^v/, "").split(/[.-]/).map((x) => Number(x) || 0);
}

function compareVersions(a: string, b: string): number {
  const x = versionOf(a);
  const y = versionOf(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

function pinnedIn(rockspec: string | undefined): string | undefined {
  return rockspec ? /lua-resty-healthcheck-api7\s*=\s*([\d.]+)/.exec(rockspec)?.[1] : undefined;
}

/** The library folders for a wanted healthcheck version: exact, else the nearest lower one. */
function depDirs(luaDeps: string, wanted: string | undefined): { dirs: string[]; version: string; note?: string } {
  const sub = (name: string): string => join(luaDeps, name);
  for (const name of ["lua-resty-healthcheck", "lua-resty-timer", "lua-resty-balancer"]) {
    if (!existsSync(sub(name))) throw new UsageError(`--lua-deps ${luaDeps}: no ${name}/ folder (expected the layout of ../shared/lua-deps: <library>/<tag>/lib/...)`);
  }
  const versions = (name: string): string[] => readdirSync(sub(name)).filter((d) => existsSync(join(sub(name), d, "lib"))).sort(compareVersions);
  const hcs = versions("lua-resty-healthcheck");
  if (hcs.length === 0) throw new UsageError(`--lua-deps ${luaDeps}: lua-resty-healthcheck/ has no <tag>/lib folder`);
  let pick = hcs[hcs.length - 1]!;
  let note: string | undefined;
  if (wanted) {
    const exact = hcs.find((d) => compareVersions(d, wanted) === 0);
    const lower = hcs.filter((d) => compareVersions(d, wanted) < 0);
    if (exact) pick = exact;
    else {
      pick = lower[lower.length - 1] ?? pick;
      note = `lua-resty-healthcheck ${wanted} is pinned but not in ${luaDeps}; using ${pick}`;
    }
  }
  const newest = (name: string): string => join(sub(name), versions(name).at(-1)!, "lib");
  const out: { dirs: string[]; version: string; note?: string } = { dirs: [join(sub("lua-resty-healthcheck"), pick, "lib"), newest("lua-resty-timer"), newest("lua-resty-balancer")], version: pick };
  if (note) out.note = note;
  return out;
}

function rockspecIn(dir: string): string | undefined {
  const f = readdirSync(dir).find((n) => n.endsWith(".rockspec"));
  return f ? readFileSync(join(dir, f), "utf8") : undefined;
}

interface BaseTree {
  root: string;
  origin: string;
  rockspec?: string;
}

function gitTree(dir: string, ref: string): BaseTree {
  if (ref === "worktree") {
    const t: BaseTree = { root: dir, origin: `working tree of ${dir}` };
    const r = rockspecIn(dir);
    if (r) t.rockspec = r;
    return t;
  }
  const commit = spawnSync("git", ["-C", dir, "rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { encoding: "utf8" }).stdout.trim();
  if (!commit) throw new UsageError(`unknown version "${ref}": no such tag, branch or commit in the git checkout ${dir}`);
  const out = tempDir();
  const tar = spawnSync("git", ["-C", dir, "archive", "--format=tar", commit, "apisix"], { maxBuffer: 256 << 20 });
  if (tar.status !== 0) throw new UsageError(`git archive ${ref} apisix in ${dir} failed: ${tar.stderr.toString().trim()}`);
  execFileSync("tar", ["-x", "-C", out], { input: tar.stdout });
  const t: BaseTree = { root: out, origin: `git ${ref} (${commit.slice(0, 9)}) of ${dir}` };
  const spec = git(dir, ["ls-tree", "--name-only", commit]).split("\n").find((n) => n.endsWith(".rockspec"));
  if (spec) t.rockspec = git(dir, ["show", `${commit}:${spec}`]);
  return t;
}

function folderTree(dir: string, version: string): BaseTree {
  const root = join(dir, version);
  if (!existsSync(join(root, "apisix"))) {
    const found = existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(join(dir, d, "apisix"))) : [];
    throw new UsageError(`unknown version "${version}": no ${join(root, "apisix")} (found: ${found.join(", ") || "nothing"})`);
  }
  const t: BaseTree = { root, origin: `folder ${root}` };
  const r = rockspecIn(root);
  if (r) t.rockspec = r;
  return t;
}

/** Apply `patch -p1` to a copy; a hunk that does not apply is one line naming file and hunk. */
function patched(base: BaseTree, name: string, patches: string[]): BaseTree {
  if (patches.length === 0) return base;
  const out = tempDir();
  cpSync(join(base.root, "apisix"), join(out, "apisix"), { recursive: true });
  for (const p of patches) {
    const file = resolve(p);
    if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`${name}: no patch file ${p}`);
    const r = spawnSync("patch", ["-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-r", "-", "-d", out, "-i", file], { encoding: "utf8" });
    if (r.error) throw new UsageError(`${name}: cannot run patch (${r.error.message}); install it (apt-get install patch)`);
    if (r.status !== 0) {
      let current = "?";
      for (const line of `${r.stdout}\n${r.stderr}`.split("\n")) {
        const f = /^patching file (.+)$/.exec(line);
        if (f) current = f[1]!;
        const h = /^Hunk #(\d+) FAILED at (\d+)/.exec(line);
        if (h) throw new UsageError(`${name}: ${basename(p)} does not apply: hunk #${h[1]} of ${current} (at line ${h[2]})`);
      }
      throw new UsageError(`${name}: ${basename(p)} does not apply: ${(r.stdout + r.stderr).trim().split("\n").pop()}`);
    }
  }
  return { ...base, root: out, origin: `${base.origin} + ${patches.map((p) => basename(p)).join(" + ")}` };
}

/** Resolve one `--versions` entry of the lua engine to a tree of APISIX's Lua and its libraries. */
export function resolveLuaTree(spec: string, sources: LuaSources): LuaTree {
  const [base, ...patches] = spec.split("+");
  if (!base) throw new UsageError(`--versions: empty version in "${spec}"`);
  if (!existsSync(sources.apisix)) throw new UsageError(`--apisix ${sources.apisix}: no such directory`);
  const fromGit = isGitCheckout(sources.apisix);
  if (base === "worktree" && !fromGit) throw new UsageError(`"worktree" needs --apisix to be a git checkout of apache/apisix; ${sources.apisix} is not`);
  const tree = patched(fromGit ? gitTree(sources.apisix, base) : folderTree(sources.apisix, base), spec, patches);
  const deps = depDirs(sources.luaDeps, pinnedIn(tree.rockspec) ?? PINNED_HEALTHCHECK[base]);
  const out: LuaTree = { name: spec, base, patches, apisixRoot: tree.root, origin: tree.origin, healthcheck: { version: deps.version }, depDirs: deps.dirs };
  if (deps.note) out.healthcheck.note = deps.note;
  return out;
}
