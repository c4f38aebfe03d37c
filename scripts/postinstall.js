// Runs after `npm install` / `npm ci`. npm skips optional packages whose
// `engines` the running Node does not meet, and EDR's native package asks
// for Node >= 22: when npm itself ran on an older Node (the machines ship
// Node 20), the chain's native binding is missing although the project
// brings its own Node 24 (node_modules/.bin/node, first on PATH in every npm
// script, so this file runs on it). Install once more with that Node, so that
// the engine checks see the Node the project runs on.
import { spawnSync } from "node:child_process";

const npmNode = process.env.npm_node_execpath;
const npmCli = process.env.npm_execpath;
const major = (version) => Number(version.replace(/^v/, "").split(".")[0]);

if (npmNode && npmCli && npmNode !== process.execPath && major(process.version) >= 24) {
  const probe = spawnSync(npmNode, ["-p", "process.version"], { encoding: "utf8" });
  const npmNodeVersion = probe.stdout.trim();
  if (probe.status === 0 && major(npmNodeVersion) < 24) {
    console.error(`cloister: npm ran on Node ${npmNodeVersion}; installing the packages it skipped with the project's Node ${process.version}`);
    const again = spawnSync(process.execPath, [npmCli, "install", "--ignore-scripts", "--no-save", "--no-audit", "--no-fund"], { stdio: "inherit" });
    process.exit(again.status ?? 1);
  }
}
