import { http, passthrough } from "msw";
import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";

/**
 * Every test runs behind msw with onUnhandledRequest "error": HTTP to loopback passes through to
 * the real mock backends and gateways, anything else fails the test. This is how the suite proves
 * no traffic leaves loopback.
 */
const loopback = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//;

export const networkGuard = setupServer(http.all(loopback, () => passthrough()));

beforeAll(() => networkGuard.listen({ onUnhandledRequest: "error" }));
afterAll(() => networkGuard.close());
