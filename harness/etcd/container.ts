/**
 * etcd in a container through testcontainers, used only when a Docker engine answers. Detection
 * is our own and bounded (about 1.5 s at worst): testcontainers' own runtime discovery tries
 * several strategies and can take much longer to give up when there is no engine, and many
 * machines (this one included) have the docker CLI but no daemon.
 */

import { existsSync, readFileSync } from "node:fs";
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";

export const ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.17";
const ETCD_IMAGE_VERSION = "3.5.17";
const PING_TIMEOUT_MS = 1500;

export interface DockerAvailability {
  available: boolean;
  reason: string;
}

type DockerTarget = { kind: "unix"; socketPath: string; label: string } | { kind: "tcp"; url: URL; label: string };

/** docker.host from ~/.testcontainers.properties, which testcontainers also honours. */
function testcontainersPropertiesHost(): string | undefined {
  try {
    const text = readFileSync(join(homedir(), ".testcontainers.properties"), "utf8");
    const m = /^\s*docker\.host\s*=\s*(.+?)\s*$/m.exec(text);
    return m?.[1];
  } catch {
    return undefined;
  }
}

function parseHost(host: string, source: string): DockerTarget | string {
  if (host.startsWith("unix://")) {
    const socketPath = host.slice("unix://".length);
    if (!existsSync(socketPath)) return `${source}=${host} but ${socketPath} does not exist`;
    return { kind: "unix", socketPath, label: host };
  }
  if (host.startsWith("tcp://") || host.startsWith("http://") || host.startsWith("https://")) {
    return { kind: "tcp", url: new URL(host.replace(/^tcp:/, "http:")), label: host };
  }
  return `${source}=${host} is not a unix:// or tcp:// address`;
}

function findDockerTarget(env: NodeJS.ProcessEnv): DockerTarget | string {
  if (env.DOCKER_HOST) return parseHost(env.DOCKER_HOST, "DOCKER_HOST");
  const fromProps = testcontainersPropertiesHost();
  if (fromProps) return parseHost(fromProps, "~/.testcontainers.properties docker.host");
  const uid = process.getuid?.();
  const candidates = [
    "/var/run/docker.sock",
    join(homedir(), ".docker/run/docker.sock"),
    join(homedir(), ".docker/desktop/docker.sock"),
    env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "docker.sock") : undefined,
    uid !== undefined ? `/run/user/${uid}/docker.sock` : undefined,
  ].filter((p): p is string => !!p);
  for (const socketPath of candidates) {
    if (existsSync(socketPath)) return { kind: "unix", socketPath, label: `unix://${socketPath}` };
  }
  return "DOCKER_HOST unset and no Docker socket (/var/run/docker.sock missing)";
}

/** GET /_ping on the engine; resolves with an error message or undefined when it answered OK. */
function ping(target: DockerTarget, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    const opts: RequestOptions = { method: "GET", path: "/_ping", timeout: PING_TIMEOUT_MS };
    let req;
    if (target.kind === "unix") {
      req = httpRequest({ ...opts, socketPath: target.socketPath });
    } else {
      const tls = env.DOCKER_TLS_VERIFY === "1" || target.url.protocol === "https:";
      const base = { ...opts, host: target.url.hostname, port: target.url.port || (tls ? 2376 : 2375) };
      if (tls) {
        const certDir = env.DOCKER_CERT_PATH ?? join(homedir(), ".docker");
        const read = (f: string): Buffer | undefined => {
          try {
            return readFileSync(join(certDir, f));
          } catch {
            return undefined;
          }
        };
        req = httpsRequest({ ...base, ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") });
      } else {
        req = httpRequest(base);
      }
    }
    // A hard deadline on top of the socket timeout: nothing here may hang.
    const timer = setTimeout(() => {
      req.destroy();
      resolve(`no answer from ${target.label} within ${PING_TIMEOUT_MS} ms`);
    }, PING_TIMEOUT_MS);
    const done = (msg: string | undefined): void => {
      clearTimeout(timer);
      resolve(msg);
    };
    req.on("timeout", () => req.destroy(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)));
    req.on("error", (err) => done(`${target.label}: ${err.message}`));
    req.on("response", (res) => {
      res.resume();
      done(res.statusCode === 200 ? undefined : `${target.label} answered /_ping with HTTP ${res.statusCode}`);
    });
    req.end();
  });
}

/** Whether a Docker engine answers, and why (not). Bounded by ~1.5 s. */
export async function dockerAvailable(env: NodeJS.ProcessEnv = process.env): Promise<DockerAvailability> {
  const target = findDockerTarget(env);
  if (typeof target === "string") return { available: false, reason: target };
  const failure = await ping(target, env);
  if (failure) return { available: false, reason: `Docker engine not answering (${failure})` };
  return { available: true, reason: `Docker engine at ${target.label}` };
}

export interface EtcdContainer {
  readonly endpoint: string;
  readonly version: string;
  readonly image: string;
  /** Milliseconds from start() to healthy (includes pulling the image the first time). */
  readonly startMs: number;
  /** A real etcd restart (container restart; data is kept). */
  restartProcess(): Promise<void>;
  /** Stop and remove the container. Idempotent. */
  stop(): Promise<void>;
}

async function waitHealthy(endpoint: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(500) });
      if (res.ok && ((await res.json()) as { health?: string }).health === "true") return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`etcd container at ${endpoint} not healthy within ${timeoutMs} ms after restart`);
}

export async function startEtcdContainer(opts: { startupTimeoutMs?: number } = {}): Promise<EtcdContainer> {
  // Imported lazily: testcontainers is large and is only needed when Docker is really there.
  const { GenericContainer, Wait } = await import("testcontainers");
  const t0 = performance.now();
  const container = await new GenericContainer(ETCD_IMAGE)
    .withCommand([
      "etcd",
      "--name", "default",
      "--data-dir", "/etcd-data",
      "--listen-client-urls", "http://0.0.0.0:2379",
      "--advertise-client-urls", "http://127.0.0.1:2379",
      "--listen-peer-urls", "http://0.0.0.0:2380",
      "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
      "--initial-cluster", "default=http://127.0.0.1:2380",
      "--log-level", "error",
      "--heartbeat-interval", "10",
      "--election-timeout", "100",
    ])
    .withExposedPorts(2379)
    .withWaitStrategy(Wait.forHttp("/health", 2379).forStatusCode(200))
    .withStartupTimeout(opts.startupTimeoutMs ?? 120_000)
    .start();
  const startMs = Math.round(performance.now() - t0);
  let stopping: Promise<void> | undefined;
  return {
    // Read on every use: the mapped port can change when the container restarts.
    get endpoint() {
      return `http://${container.getHost()}:${container.getMappedPort(2379)}`;
    },
    version: ETCD_IMAGE_VERSION,
    image: ETCD_IMAGE,
    startMs,
    async restartProcess() {
      await container.restart();
      // restart() does not re-run the wait strategy.
      await waitHealthy(`http://${container.getHost()}:${container.getMappedPort(2379)}`, 30_000);
    },
    stop() {
      stopping ??= container.stop().then(() => undefined);
      return stopping;
    },
  };
}
