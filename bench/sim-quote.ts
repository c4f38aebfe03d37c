/**
 * Time for the simulated provider to produce evidence (quote; collateral is
 * cached by the provider) with an existing simulated PKI.
 * Prints JSON: { "sim_quote_ms_p50": ..., "sim_quote_ms_p95": ..., "runs": N }.
 */
import { createSimPki } from "../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../src/attestation/sim/provider.ts";

const runs = Number(process.env.RUNS ?? 200);
const pki = await createSimPki({ seed: "be".repeat(32) });
const provider = new SimulatedProvider({ pki, mrEnclave: "ab".repeat(32) });
const reportData = new Uint8Array(64);
await provider.attest(reportData); // warm-up: builds and caches the collateral

const samples: number[] = [];
for (let i = 0; i < runs; i++) {
  reportData[0] = i & 0xff;
  const start = performance.now();
  await provider.attest(reportData);
  samples.push(performance.now() - start);
}
samples.sort((a, b) => a - b);
const at = (q: number) => Number((samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0).toFixed(3));
console.log(JSON.stringify({ sim_quote_ms_p50: at(0.5), sim_quote_ms_p95: at(0.95), runs }));
