import { describe, expect, it } from "vitest";
import { dockerAvailable, startEtcdContainer } from "../../harness/etcd/container.ts";
import { EtcdStore } from "../../harness/etcd/etcd-store.ts";

const t0 = performance.now();
const docker = await dockerAvailable();
const detectMs = performance.now() - t0;

describe("etcd in a container (testcontainers)", () => {
  it("Docker detection answers quickly, with a reason, instead of waiting on testcontainers", () => {
    expect(detectMs).toBeLessThan(3000);
    expect(docker.reason.length).toBeGreaterThan(0);
  });

  it.skipIf(!docker.available)(`starts etcd, serves writes and watches, and stops${docker.available ? "" : ` [skipped: no Docker: ${docker.reason}]`}`, async () => {
    const c = await startEtcdContainer();
    const store = new EtcdStore([c.endpoint], "container etcd");
    try {
      const rev = await store.put("/apisix/routes/1", "{}");
      expect((await store.get("/apisix/routes/1"))?.modRevision).toBe(rev);
    } finally {
      await store.close();
      await c.stop();
    }
  }, 180_000);
});
