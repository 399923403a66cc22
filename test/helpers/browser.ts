import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** The system's Chromium (Debian: package chromium); CHROMIUM_PATH overrides. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
  return candidates.find((p): p is string => p !== undefined && p !== "" && existsSync(p));
}

/** Flags for a closed machine: nothing in the browser may reach for the network on its own. */
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export interface OpenedPage {
  page: Page;
  /** console.error messages and uncaught page errors. */
  errors: string[];
  /** Requests the page made to anything but the file itself (aborted). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Headless Chromium with a fresh profile directory; the page is opened from a file:// URL and
 * every other request is recorded and aborted, so a page that needs the network shows it.
 */
export async function openPage(url: string, viewport = { width: 1400, height: 900 }): Promise<OpenedPage> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error("no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)");
  const profile = mkdtempSync(join(tmpdir(), "harness-chromium-"));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: ARGS, viewport });
    const errors: string[] = [];
    const requests: string[] = [];
    await context.route("**/*", (route) => {
      const u = route.request().url();
      if (u === url || u.startsWith(url + "#")) return route.continue();
      requests.push(u);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    const opened = context;
    return {
      page,
      errors,
      requests,
      close: async () => {
        await opened.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}
