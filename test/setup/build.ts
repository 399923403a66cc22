import { build } from "../../bin/build.js";

/**
 * The end-to-end tests run `node bin/harness.js` as a user does, and that runs the build in dist/:
 * build it from the sources under test before any test starts.
 */
export default async function setup(): Promise<void> {
  await build();
}
