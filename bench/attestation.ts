/**
 * Attestation benchmark: DCAP verifications per second with cached collateral
 * (loaded once, reused for every verification) for the real SGX v3 and TDX v4
 * vectors, Cloister's verifyDcapQuote side by side with @phala/dcap-qvl's
 * verify on the same inputs in the same process, interleaved run by run so
 * both see the same machine load; plus the simulated provider's time to
 * produce a quote.
 *
 * Usage: node bench/attestation.ts [--runs 5] [--iterations 200] [--sim-quotes 200] [--testdata <dir>]
 * Progress goes to stderr on a terminal (or with CLOISTER_PROGRESS=1); the last line of stdout is one JSON object.
 */
import { readFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import dcap from "@phala/dcap-qvl";
import { intelSgxRootCaDer } from "../src/attestation/dcap/intel-root.ts";
import { createSimPki } from "../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../src/attestation/sim/provider.ts";
import type { DcapCollateral } from "../src/attestation/types.ts";
import { verifyDcapQuote } from "../src/attestation/verify.ts";
import { progressWanted } from "../src/cli/output.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    iterations: { type: "string", default: "200" },
    "sim-quotes": { type: "string", default: "200" },
    testdata: { type: "string", default: fileURLToPath(new URL("../../shared/testdata/attestation/", import.meta.url)) },
  },
});
const positiveInt = (flag: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag} takes a positive integer, got '${v}'`);
  return n;
};
const runs = positiveInt("runs", values.runs);
const iterations = positiveInt("iterations", values.iterations);
const simQuotes = positiveInt("sim-quotes", values["sim-quotes"]);
const warmup = Math.max(10, Math.floor(iterations / 10));

interface Vector {
  name: string;
  quote: Uint8Array;
  collateral: DcapCollateral;
  now: number;
  tcbStatus: string;
}

async function loadVector(name: string): Promise<Vector> {
  let cases: { name: string; quote_file: string; collateral_file: string; now_secs: number; expect: { tcb_status: string } }[];
  try {
    cases = JSON.parse(await readFile(join(values.testdata, "cases.json"), "utf8"));
  } catch (error) {
    throw new Error(`cannot read the shared attestation vectors in ${values.testdata} (${(error as Error).message}); pass --testdata <dir of cases.json>`);
  }
  const c = cases.find((x) => x.name === name);
  if (!c) throw new Error(`case ${name} is not in ${values.testdata}/cases.json`);
  return {
    name,
    quote: new Uint8Array(await readFile(join(values.testdata, c.quote_file))),
    collateral: JSON.parse(await readFile(join(values.testdata, c.collateral_file), "utf8")) as DcapCollateral,
    now: c.now_secs,
    tcbStatus: c.expect.tcb_status,
  };
}

type Verifier = (v: Vector) => Promise<string>;

const trustedRoots = [intelSgxRootCaDer()];
const verifiers: Record<"cloister" | "dcap_qvl", Verifier> = {
  cloister: async (v) => (await verifyDcapQuote(v.quote, v.collateral, { now: v.now, trustedRoots })).tcbStatus!,
  // dcap-qvl takes the collateral object in the same JSON shape.
  dcap_qvl: async (v) => dcap.verify(v.quote, v.collateral as unknown as Parameters<typeof dcap.verify>[1], v.now).status,
};

/** Verifications per second over `n` sequential verifications. */
async function opsPerSecond(verify: Verifier, v: Vector, n: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) await verify(v);
  return n / ((performance.now() - start) / 1000);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 1) => Number(x.toFixed(digits));

async function benchVector(v: Vector) {
  for (const [name, verify] of Object.entries(verifiers)) {
    const status = await verify(v);
    // A benchmark of a verifier that fails would measure an error path.
    if (status !== v.tcbStatus) throw new Error(`${name} gives ${status} for ${v.name}, expected ${v.tcbStatus}`);
    await opsPerSecond(verify, v, warmup);
  }
  const samples = { cloister: [] as number[], dcap_qvl: [] as number[] };
  for (let r = 0; r < runs; r++) {
    for (const name of Object.keys(verifiers) as (keyof typeof verifiers)[]) {
      const ops = await opsPerSecond(verifiers[name], v, iterations);
      samples[name].push(ops);
      if (progressWanted()) process.stderr.write(`${v.name} run ${r + 1}/${runs} ${name}: ${ops.toFixed(1)} verifications/s\n`);
    }
  }
  const cloister = median(samples.cloister);
  const dcapQvl = median(samples.dcap_qvl);
  return {
    cloister_ops_per_s: round(cloister),
    dcap_qvl_ops_per_s: round(dcapQvl),
    ratio_cloister_over_dcap_qvl: round(cloister / dcapQvl, 2),
    cloister_runs: samples.cloister.map((x) => round(x)),
    dcap_qvl_runs: samples.dcap_qvl.map((x) => round(x)),
  };
}

/** Milliseconds for the simulated provider to produce a quote (collateral already cached by it). */
async function benchSimQuote() {
  const pki = await createSimPki({ seed: "be".repeat(32) });
  const provider = new SimulatedProvider({ pki, mrEnclave: "ab".repeat(32) });
  const reportData = new Uint8Array(64);
  await provider.attest(reportData);
  const samples: number[] = [];
  for (let i = 0; i < simQuotes; i++) {
    reportData[0] = i & 0xff;
    const start = performance.now();
    await provider.attest(reportData);
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!, 3);
  return { sim_quote_ms_p50: at(0.5), sim_quote_ms_p95: at(0.95), sim_quotes: simQuotes };
}

const sgx = await loadVector("sgx_v3_ok");
const tdx = await loadVector("tdx_v4_ok");
const result = {
  benchmark: "attestation",
  node: process.version,
  cpus: cpus().length,
  cpu_model: cpus()[0]?.model ?? "unknown",
  method: { runs, iterations_per_run: iterations, warmup_iterations: warmup, statistic: "median of runs", collateral: "parsed once and reused (cached)" },
  sgx_v3: await benchVector(sgx),
  tdx_v4: await benchVector(tdx),
  ...(await benchSimQuote()),
};
console.log(JSON.stringify(result));
