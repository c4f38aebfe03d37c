/**
 * `cloister policy show [--network <dir> | --policy <file> | --sim-pki <dir>] [--json]`: the policy
 * manifest a command would trust (the same choice as every network command makes: --policy, else
 * --sim-pki, else the network file's, else the strict production manifest), and its digest. With
 * --json stdout is the normalized manifest itself, a manifest file as is (the digest goes to
 * stderr), so `cloister policy show --policy old-policy.json --json > manifest.json` converts an
 * old policy file.
 */
import { parseArgs } from "node:util";
import { manifestDigest, type Manifest } from "../../attestation/manifest/index.ts";
import { UsageError } from "../errors.ts";
import { loadNetwork, namedNetwork } from "../network-file.ts";
import { manifestFrom } from "../network-options.ts";
import { printJson } from "../output.ts";
import { policyUsage } from "../usage.ts";

export async function policyCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "show") throw new UsageError(`unknown policy command '${sub ?? ""}'\n\n${policyUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: { network: { type: "string" }, policy: { type: "string" }, "sim-pki": { type: "string" }, json: { type: "boolean", default: false } },
  });
  if (positionals.length > 0) throw new UsageError(`policy show takes no positional arguments\n\n${policyUsage}`);
  const named = values.policy || values["sim-pki"] ? undefined : namedNetwork(values.network);
  if (values.network !== undefined && (values.policy || values["sim-pki"])) throw new UsageError("give --network, --policy or --sim-pki, not more than one");
  const { manifest, source } = named !== undefined
    ? { manifest: (await loadNetwork(named, values.network === undefined)).manifest, source: `the network file of ${named}` }
    : { manifest: await manifestFrom(values), source: values.policy ?? (values["sim-pki"] ? `the devnet PKI in ${values["sim-pki"]}` : "the strict production manifest") };
  const digest = manifestDigest(manifest);
  if (values.json) {
    printJson(manifest);
    process.stderr.write(`manifest digest ${digest} (${source})\n`);
  } else {
    process.stdout.write(describe(manifest, digest, source));
  }
  return 0;
}

function describe(m: Manifest, digest: string, source: string): string {
  const a = m.attestation;
  const lines = [
    `policy manifest ${m.name ? `"${m.name}" ` : ""}(version ${m.version}) from ${source}`,
    `  digest         ${digest}`,
    `  evidence       ${a.trustedRoots.length} trusted root(s); simulation ${a.allowSimulation ? `ALLOWED (${a.simulatedRoots.length} simulated root(s): a development network)` : "refused"}; debug ${a.allowDebug ? "ALLOWED" : "refused"}`,
    `  TCB            ${a.acceptedTcbStatuses.join(", ")}${a.acceptedAdvisoryIds.length ? `; advisories ${a.acceptedAdvisoryIds.join(", ")}` : ""}${a.teeTypes ? `; TEE types ${a.teeTypes.join(", ")}` : ""}${a.maxCollateralAgeSeconds !== undefined ? `; collateral at most ${a.maxCollateralAgeSeconds} s old` : ""}`,
  ];
  for (const [name, p] of Object.entries(m.packages)) {
    const code = [...p.measurements, ...p.signers.map((s) => `signer ${s.signer}${s.productId !== undefined ? ` product ${s.productId}` : ""}${s.minSvn !== undefined ? ` SVN >= ${s.minSvn}` : ""}`)];
    lines.push(`  package        ${name}: ${code.length ? code.join(", ") : "no code (accepts nothing)"}`);
  }
  for (const [name, r] of Object.entries(m.roles)) lines.push(`  role           ${name}: ${r.anyCode ? "ANY CODE" : r.packages.length ? r.packages.join(", ") : "no package (accepts nothing)"}`);
  const t = m.limits.task;
  lines.push(
    `  task limits    default ${t.defaults.memoryMb} MiB, ${t.defaults.cpuTimeMs} ms CPU, ${t.defaults.timeoutMs} ms wall, ${t.defaults.maxOutputBytes} B output; at most ${t.max.memoryMb} MiB, ${t.max.timeMs} ms, ${t.max.outputBytes} B`,
    `  evidence size  at most ${m.limits.evidenceBytes} B`,
    `  registration   ${m.registration.lifetimeSeconds} s`,
  );
  return `${lines.join("\n")}\n`;
}
