/**
 * Our own DNS: every host name a scenario uses maps to one or more 127.0.0.x addresses. A name
 * that is not in the table is refused with a clear error, so nothing can resolve to the internet.
 */

export class ResolveError extends Error {}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIPv4(host: string): boolean {
  const m = IPV4.exec(host);
  return !!m && m.slice(1).every((p) => Number(p) <= 255);
}

export function isIPv6(host: string): boolean {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return h.includes(":") && /^[0-9a-fA-F:.]+$/.test(h);
}

export function isLoopback(ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith("127.");
  const h = ip.startsWith("[") ? ip.slice(1, -1) : ip;
  return h === "::1";
}

export class Resolver {
  private readonly table = new Map<string, string[]>();
  private nextOctet = 2;

  constructor(entries: Record<string, string | string[]> = {}) {
    for (const [name, ips] of Object.entries(entries)) this.add(name, ips);
  }

  /** A resolver with the same names; later changes to either are its own. */
  clone(): Resolver {
    const copy = new Resolver();
    for (const [name, ips] of this.table) copy.table.set(name, [...ips]);
    copy.nextOctet = this.nextOctet;
    return copy;
  }

  /** Map a name to loopback addresses; anything else is a mistake in the fixture. */
  add(name: string, ips: string | string[]): void {
    const list = Array.isArray(ips) ? ips : [ips];
    for (const ip of list) {
      if (!isLoopback(ip)) {
        throw new ResolveError(`resolver: ${name} -> ${ip} is not a loopback address (127.0.0.0/8 or ::1)`);
      }
    }
    this.table.set(name.toLowerCase(), [...list]);
  }

  /** Give a name a fresh 127.0.0.x address of its own (x from 2 up), one no other name has. */
  allocate(name: string): string {
    const existing = this.table.get(name.toLowerCase());
    if (existing) return existing[0]!;
    const used = new Set([...this.table.values()].flat());
    while (this.nextOctet <= 254 && used.has(`127.0.0.${this.nextOctet}`)) this.nextOctet++;
    if (this.nextOctet > 254) throw new ResolveError("resolver: out of 127.0.0.x addresses");
    const ip = `127.0.0.${this.nextOctet++}`;
    this.add(name, ip);
    return ip;
  }

  has(name: string): boolean {
    return this.table.has(name.toLowerCase());
  }

  /** Every address of a name (an IP literal resolves to itself). */
  resolveAll(host: string): string[] {
    if (isIPv4(host) || isIPv6(host)) return [host];
    const ips = this.table.get(host.toLowerCase());
    if (!ips) {
      throw new ResolveError(
        `resolver: no loopback address for "${host}" (add it to the scenario's hosts or fixtures/hosts.json)`,
      );
    }
    return [...ips];
  }

  entries(): Record<string, string[]> {
    return Object.fromEntries(this.table);
  }
}
