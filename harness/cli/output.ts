import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import { UsageError } from "./usage.ts";

/**
 * mkdir -p, one level at a time. Node's own recursive mkdirSync never returns for some paths a
 * user can give (under /proc it loops for ever on ENOENT, seen on Node 20), and an output
 * option must fail, not hang.
 */
export function makeDirs(dir: string): void {
  const parts = resolve(dir).split(sep);
  for (let i = 2; i <= parts.length; i++) {
    const path = parts.slice(0, i).join(sep) || sep;
    try {
      mkdirSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") throw e;
      if (!statSync(path).isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: "ENOTDIR" });
    }
  }
}

/**
 * Write a report or record after the results were printed. --out was checked before the work
 * started, so a failure here is rare (the disk filled, the dir was removed); it is still one line
 * and exit 2, naming the file, never a stack trace.
 */
export function writeRecord(file: string, text: string): void {
  try {
    makeDirs(dirname(file));
    writeFileSync(file, text);
  } catch (e) {
    throw new UsageError(`could not write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
