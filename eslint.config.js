import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "src/chain/abi/**", ".data/**", "coverage/**", "web/dist/**", "web/.dist-*/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", URL: "readonly", TextEncoder: "readonly", TextDecoder: "readonly", AbortController: "readonly", AbortSignal: "readonly", fetch: "readonly", structuredClone: "readonly", performance: "readonly", WebAssembly: "readonly", crypto: "readonly", queueMicrotask: "readonly", setImmediate: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  // The dashboard's browser code (web/): the browser's globals.
  {
    files: ["web/src/**/*.ts"],
    languageOptions: { globals: { window: "readonly", document: "readonly", location: "readonly", Node: "readonly", HTMLElement: "readonly", HTMLAnchorElement: "readonly", SVGElement: "readonly", Event: "readonly", CSS: "readonly", Response: "readonly" } },
  },
);
