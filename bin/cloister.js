#!/usr/bin/env node
// Cloister's command-line entry. The sources are TypeScript run by Node 24's
// built-in type stripping, so a clone needs no build step.
const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  console.error(`cloister needs Node.js 24 or newer (this is ${process.version}). Install it with: npm install --prefix ~/.node24 node@24 && export PATH=~/.node24/node_modules/.bin:$PATH`);
  process.exit(2);
}
await import("../src/cli/main.ts");
