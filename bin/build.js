#!/usr/bin/env node
/**
 * Builds the CLI into dist/: the TypeScript under harness/ bundled by esbuild into plain ES modules,
 * split so that each command loads only its own code, with the JSON Schema validators compiled to
 * code ahead of time. `npm ci` runs this (the `prepare` script); `npm run build` does it by hand;
 * bin/harness.js does it when dist/ is missing or older than the sources.
 *
 * dist/build-info.json lists every file the build read with its mtime and size; staleReason()
 * compares them with the files on disk. npm packages stay external (loaded from node_modules), but
 * for the few in BUNDLED.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const DIST = join(ROOT, "dist");
const ENTRY = "harness/cli/main.ts";
const INFO = "build-info.json";

/**
 * Modules whose only export is a set made by defineValidators (harness/schema/validators.ts).
 * The build replaces each with standalone validator code, so the built CLI loads no Ajv compiler.
 * A set not listed here still works: it is compiled on first use.
 */
export const PRECOMPILE = ["harness/gateway/admin/validators.ts", "harness/runner/validators.ts"];

/** Files whose change must also trigger a rebuild: this script, and the installed packages (npm rewrites its lockfile in node_modules on every install). */
const EXTRA_INPUTS = ["bin/build.js", "node_modules/.package-lock.json"];

const rel = (file) => relative(ROOT, file).split(sep).join("/");

/** Why dist/ cannot be used as it is (missing, or a file it was built from changed), or undefined. */
export function staleReason(outdir = DIST) {
  let info;
  try {
    info = JSON.parse(readFileSync(join(outdir, INFO), "utf8"));
  } catch {
    return "no build in dist/";
  }
  for (const [file, [mtimeMs, size]] of Object.entries(info.inputs)) {
    let st;
    try {
      st = statSync(join(ROOT, file));
    } catch {
      return `${file} is gone since the last build`;
    }
    if (st.mtimeMs !== mtimeMs || st.size !== size) return `${file} changed since the last build`;
  }
  return undefined;
}

/**
 * An esbuild plugin that reads the project's own files itself: it records each one's mtime and size
 * (taken before reading, so an edit during the build shows as stale later), and rewrites
 * `import.meta.url` to the source file's URL so `new URL("../../fixtures/…", import.meta.url)`
 * finds the same file from dist/ as from harness/.
 */
function sourcesPlugin(outdir, inputs, replacements) {
  return {
    name: "harness-sources",
    setup(b) {
      b.onLoad({ filter: /\.(ts|js|json)$/ }, async (args) => {
        if (args.path.split(sep).includes("node_modules")) return undefined;
        const loader = extname(args.path) === ".json" ? "json" : extname(args.path) === ".js" ? "js" : "ts";
        const sourceUrl = `new URL(${JSON.stringify(relative(outdir, args.path).split(sep).join("/"))}, import.meta.url).href`;
        const replaced = replacements.get(args.path);
        if (replaced) return { contents: replaced(sourceUrl), loader: "js", resolveDir: dirname(args.path) };
        // Imported here: every command loads this file for staleReason, and only a build reads files this way.
        const { readFile, stat } = await import("node:fs/promises");
        const st = await stat(args.path);
        inputs.set(rel(args.path), [st.mtimeMs, st.size]);
        let contents = await readFile(args.path, "utf8");
        if (loader !== "json") contents = contents.replaceAll("import.meta.url", sourceUrl);
        return { contents, loader, resolveDir: dirname(args.path) };
      });
    },
  };
}

const COMMON = { bundle: true, platform: "node", format: "esm", target: "node20.19", packages: "external", logLevel: "silent", legalComments: "none" };

/**
 * Packages bundled into the CLI instead of loaded from node_modules: commander is on every
 * command's path, and Node's CommonJS loader (resolving it, wrapping it, lexing its exports for an
 * ESM import) cost more than its code: `harness --help` took 146-149 ms bundled against 150-163 ms
 * (30 runs each, interleaved). Bundled CommonJS requires Node's own modules, hence `require` in
 * each chunk.
 */
const BUNDLED = ["commander"];
const bundledPackages = {
  name: "harness-bundled-packages",
  setup(b) {
    const filter = new RegExp(`^(${BUNDLED.join("|")})$`);
    const requireHere = createRequire(import.meta.url);
    b.onResolve({ filter }, (args) => ({ path: requireHere.resolve(args.path) }));
  },
};
const REQUIRE_BANNER = 'import { createRequire as __harnessRequire } from "node:module"; const require = __harnessRequire(import.meta.url);';

/**
 * Standalone code for one validators module: its set is loaded (bundled to a temporary file),
 * compiled with code generation on, and emitted as a module with
 * the same export. Returns a function of the source file's URL expression (for createRequire).
 */
let precompiled = 0;

/** The standalone module the build puts in place of a validators module (for tests: it resolves from node_modules/.cache/). */
export async function precompiledModule(file) {
  const code = await precompile(await import("esbuild"), file, new Map());
  return code("import.meta.url");
}

async function precompile(esbuild, file, inputs) {
  // Under node_modules so that its own imports (ajv) resolve; a new name each time, as import() caches.
  const tmpdir = join(ROOT, "node_modules", ".cache", "harness-build");
  const tmp = join(tmpdir, `${process.pid}-${++precompiled}-${basename(file, ".ts")}.mjs`);
  await esbuild.build({ ...COMMON, entryPoints: [join(ROOT, file)], outfile: tmp, plugins: [sourcesPlugin(tmpdir, inputs, new Map())] });
  let mod;
  try {
    mod = await import(pathToFileURL(tmp).href);
  } finally {
    rmSync(tmp, { force: true });
  }
  const names = Object.keys(mod);
  const set = mod[names[0]];
  if (names.length !== 1 || typeof set !== "function" || !set.schemas || !set.options) {
    throw new Error(`${file}: expected exactly one export, a set made by defineValidators (found: ${names.join(", ") || "none"})`);
  }
  const { Ajv } = await import("ajv");
  const { default: standaloneCode } = await import("ajv/dist/standalone/index.js");
  const ajv = new Ajv({ ...set.options, code: { source: true, esm: true } });
  const keys = Object.keys(set.schemas);
  keys.forEach((k, i) => ajv.addSchema(set.schemas[k], `v${i}`));
  // Ajv's ESM output still require()s its small runtime helpers (ucs2length, equal, ...).
  const code = standaloneCode(ajv, Object.fromEntries(keys.map((_, i) => [`v${i}`, `v${i}`])))
    .replace(/^"use strict";/, "")
    .replace(/export const (v\d+) = /g, "const $1 = ");
  const table = `{ ${keys.map((k, i) => `${JSON.stringify(k)}: v${i}`).join(", ")} }`;
  return (sourceUrl) =>
    `import { createRequire } from "node:module";\nconst require = createRequire(${sourceUrl});\n${code}\n` +
    `const compiled = ${table};\nexport const ${names[0]} = Object.assign(() => compiled, { precompiled: true });\n`;
}

/** Write a file so that a reader never sees half of it (concurrent builds write the same files). */
function writeAtomic(file, contents) {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

/** Build dist/ (or `outdir`) from the sources. Resolves with the number of files and the time taken. */
export async function build({ outdir = DIST } = {}) {
  const t0 = performance.now();
  const esbuild = await import("esbuild");
  mkdirSync(outdir, { recursive: true });
  const inputs = new Map();
  const replacements = new Map();
  for (const file of PRECOMPILE) replacements.set(join(ROOT, file), await precompile(esbuild, file, inputs));
  const result = await esbuild.build({
    ...COMMON,
    entryPoints: { main: join(ROOT, ENTRY) },
    outdir,
    splitting: true,
    // Every file lands in outdir itself, so a rewritten import.meta.url is right in every chunk.
    chunkNames: "[name]-[hash]",
    write: false,
    plugins: [sourcesPlugin(outdir, inputs, replacements), bundledPackages],
    banner: { js: REQUIRE_BANNER },
    // What a build's caches are keyed on (harness/runner/scenario-cache.ts): new with each build.
    define: { HARNESS_BUILD_ID: JSON.stringify(`${Date.now().toString(36)}-${process.pid}`) },
  });
  for (const f of EXTRA_INPUTS) {
    if (!existsSync(join(ROOT, f))) continue;
    const st = statSync(join(ROOT, f));
    inputs.set(f, [st.mtimeMs, st.size]);
  }
  const written = new Set([INFO]);
  for (const out of result.outputFiles) {
    writeAtomic(out.path, out.contents);
    written.add(basename(out.path));
  }
  const lines = [...inputs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([f, v]) => `  ${JSON.stringify(f)}: ${JSON.stringify(v)}`);
  writeAtomic(join(outdir, INFO), `{"inputs": {\n${lines.join(",\n")}\n}}\n`);
  // Chunks of earlier builds (their names carry a content hash). Dot files are other builds' temporaries.
  for (const f of readdirSync(outdir)) if (!written.has(f) && !f.startsWith(".")) rmSync(join(outdir, f), { force: true, recursive: true });
  return { files: result.outputFiles.length, ms: Math.round(performance.now() - t0) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { files, ms } = await build();
    process.stdout.write(`build: ${relative(process.cwd(), DIST) || "."}/ (${files} files, ${ms} ms)\n`);
  } catch (e) {
    process.stderr.write(`build: ${e.message}\n`);
    process.exitCode = 1;
  }
}
