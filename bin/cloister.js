#!/usr/bin/env node
// Cloister's command-line entry. The sources are TypeScript run by Node 24's
// built-in type stripping, so a clone needs no build step. npm scripts and
// npx put the project's own Node 24 (node_modules/.bin/node, from the
// node-linux-* package) first on PATH; started by an older Node directly,
// this file hands over to that Node when it is there.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  const bundled = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url));
  if (!existsSync(bundled)) {
    console.error(
      `cloister needs Node.js 24 or newer (this is ${process.version}), and this platform has no bundled Node 24. ` +
        "Install Node 24 (the .nvmrc file names it for version managers), then run npm install again.",
    );
    process.exit(2);
  }
  const run = spawnSync(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(run.status ?? 1);
}
await import("../src/cli/main.ts");
