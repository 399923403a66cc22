/**
 * A log as two engines must agree on it: the warn and error lines of each second, with what says
 * nothing about behaviour taken out (time, pid, connection number, table addresses, a run's own
 * key prefix, the ports mock backends got from the kernel, etcd revisions: on a shared etcd they
 * count every run's writes). Within one second the order of lines
 * depends on pairs() over the pools, so lines are compared as a sorted list.
 */
export interface SignatureLine {
  second: number;
  level: string;
  text: string;
}

const PREFIX = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: \*\d+ /;

export function normaliseLine(text: string): string {
  return text
    .replace(PREFIX, "")
    .replace(/\/apisix-[0-9a-z-]+\//g, "/apisix/")
    .replace(/checker@0x[0-9a-f]+(?:#\d+)?|table: 0x[0-9a-f]+/g, "<table>")
    .replace(/checker#\d+/g, "<table>")
    .replace(/127\.0\.0\.1:\d{4,5}\b/g, "127.0.0.1:<port>")
    .replace(/(compact_revision = "|compact_revision=|\brev=|watch_ctx\.rev=)\d+/g, "$1<revision>");
}

/** Lines with `t` in ms since the run started. */
export function signature(lines: readonly { t: number; level: string; text: string }[]): SignatureLine[] {
  const out: SignatureLine[] = [];
  for (const l of lines) {
    if (l.level !== "warn" && l.level !== "error") continue;
    out.push({ second: Math.floor(l.t / 1000), level: l.level, text: normaliseLine(l.text) });
  }
  return out.sort((a, b) => a.second - b.second || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

export function describeSignatureLine(l: SignatureLine | undefined): string {
  return l ? `${l.second}s [${l.level}] ${l.text}` : "(no line)";
}

/** The first place two signatures part, or undefined when they agree. */
export function firstDifference(a: SignatureLine[], b: SignatureLine[]): { index: number; a?: SignatureLine; b?: SignatureLine } | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x && y && x.second === y.second && x.level === y.level && x.text === y.text) continue;
    const d: { index: number; a?: SignatureLine; b?: SignatureLine } = { index: i };
    if (x) d.a = x;
    if (y) d.b = y;
    return d;
  }
  return undefined;
}
