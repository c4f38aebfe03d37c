/**
 * Enclaves: every enclave the registry ever registered, its operator, TEE
 * type, measurement, expiry and lifecycle state, its offers on the market, a
 * SIMULATED mark in text on each simulated one, and the serving process's
 * verdict on its evidence under the named policy.
 */
import { formatEther, type Address, type Hex } from "viem";
import { readContract } from "viem/actions";
import { enclaveRegistryAbi } from "../../../src/chain/abi/EnclaveRegistry.ts";
import type { App } from "../app.ts";
import { nodeReports, type NodeReport } from "../data/nodes.ts";
import { duration, errorBox, h, hex, simulatedMark, stateTag, table, unixTime, verdict } from "../dom.ts";

const teeTypes = ["SGX", "TDX", "SEV-SNP"];

interface Registered {
  enclave: Address;
  operator: Address;
  teeType: number;
  simulated: boolean;
  measurement: Hex;
  expiry: bigint;
  evidenceCid: string;
  renewal: boolean;
}
interface OfferArgs {
  enclave: Address;
  token: Address;
  operator: Address;
  price: bigint;
  cpuMillis: number;
  memoryMb: number;
  maxDuration: number;
}

export interface EnclaveVerdict {
  signer: string;
  evidenceCid: string;
  verified: boolean;
  reason?: string;
  claims?: { teeType: string; measurement: string; simulated: boolean; tcbStatus?: string; debug: boolean };
}

export async function enclavesPage(app: App): Promise<HTMLElement> {
  const registry = (await app.events("registry"))!;
  const market = (await app.events("market"))!;
  const latest = new Map<Address, { reg: Registered; registrations: number; block: bigint }>();
  for (const e of registry.named<Registered>("EnclaveRegistered")) {
    const prev = latest.get(e.args.enclave);
    latest.set(e.args.enclave, { reg: e.args, registrations: (prev?.registrations ?? 0) + 1, block: e.blockNumber });
  }
  const offers = new Map<string, OfferArgs | undefined>();
  for (const e of market.all()) {
    const a = e.args as unknown as OfferArgs;
    if (e.eventName === "OfferPosted") offers.set(`${a.enclave}/${a.token}`, a);
    if (e.eventName === "OfferWithdrawn") offers.set(`${a.enclave}/${a.token}`, undefined);
  }
  const [block, records, verdicts, nodes] = await Promise.all([
    app.client.getBlock({ blockNumber: app.head }),
    Promise.all(
      [...latest.keys()].map(async (signer) => {
        const [operator, expiry, teeType, simulated, revoked, , measurement] = await readContract(app.client, { address: app.deployment.registry, abi: enclaveRegistryAbi, functionName: "enclaves", args: [signer] });
        return { signer, operator, expiry, teeType, simulated, revoked, measurement };
      }),
    ),
    app.config.policy ? app.api<{ enclaves: EnclaveVerdict[] }>("enclaves").then((r) => r.enclaves, (error: Error) => error) : Promise.resolve(undefined),
    nodeReports(app).catch(() => [] as NodeReport[]),
  ]);
  const now = Number(block.timestamp);
  const verdictOf = new Map(Array.isArray(verdicts) ? verdicts.map((v) => [v.signer.toLowerCase(), v]) : []);
  const nodeOf = new Map(nodes.flatMap((n) => (n.health ? [[n.health.enclave.signer.toLowerCase(), n] as const] : [])));
  const anySimulated = records.some((r) => r.simulated);

  const rows = records.map((r) => {
    const reg = latest.get(r.signer)!;
    const state = r.revoked ? "revoked" : Number(r.expiry) <= now ? "expired" : "registered";
    const node = nodeOf.get(r.signer.toLowerCase());
    const v = verdictOf.get(r.signer.toLowerCase());
    const enclaveOffers = [...offers.entries()].filter(([k, o]) => o && k.startsWith(`${r.signer}/`)).map(([, o]) => o!);
    return [
      h("span", { class: "enclave-id" }, hex(r.signer), r.simulated ? [" ", simulatedMark()] : null),
      hex(r.operator),
      h("span", null, teeTypes[r.teeType] ?? `type ${r.teeType}`, r.simulated ? h("span", { class: "muted" }, " (simulated: no hardware protection)") : null),
      hex(r.measurement, 8),
      h("span", null, unixTime(r.expiry), h("br"), h("span", { class: "muted" }, Number(r.expiry) > now ? `in ${duration(Number(r.expiry) - now)}` : `${duration(now - Number(r.expiry))} ago`)),
      h(
        "span",
        null,
        stateTag(state),
        reg.registrations > 1 ? h("span", { class: "muted" }, ` (${reg.registrations} registrations)`) : null,
        node?.health ? h("span", { class: "muted" }, h("br"), `node ${node.index}: ${node.health.registration.state}${node.health.enclave.up ? "" : ", enclave DOWN"}`) : null,
      ),
      enclaveOffers.length === 0 ? h("span", { class: "muted" }, "no offer") : enclaveOffers.map((o) => h("div", null, price(o.price, o.token), ` per task, ${o.cpuMillis} ms CPU, ${o.memoryMb} MB, ≤ ${o.maxDuration} s`)),
      evidenceCell(v, verdicts, reg.reg.evidenceCid),
    ];
  });
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Enclaves"),
    anySimulated
      ? h("p", { class: "banner sim-banner", role: "note" }, simulatedMark(), " Some enclaves here run on a SIMULATED TEE: their evidence chains to a development root, and they protect nothing from their host. Fine for a devnet; never send real data to them.")
      : null,
    h(
      "p",
      null,
      app.config.policy
        ? `Evidence is verified by the dashboard's serving process against policy "${app.config.policy.name}" (manifest ${app.config.policy.digest.slice(0, 18)}…): the quote's signature chain, the measurement the policy pins, and report_data committing to the enclave's registered keys and operator.`
        : "The serving process has no policy: evidence is not verified here.",
    ),
    Array.isArray(verdicts) || verdicts === undefined ? null : errorBox("Evidence verification unavailable", verdicts.message),
    table("Registered enclaves", ["Enclave (signer)", "Operator", "TEE", "Measurement", "Registration expiry", "Lifecycle", "Offers", "Evidence"], rows, { "data-testid": "enclaves" }),
  );
}

/** A price in the offer's token: the zero address is the chain's native currency (18 decimals). */
function price(amount: bigint, token: Address): HTMLElement {
  return /^0x0{40}$/i.test(token) ? h("span", null, `${formatEther(amount)} ETH`) : h("span", null, `${amount} units of token `, hex(token, 4));
}

function evidenceCell(v: EnclaveVerdict | undefined, verdicts: EnclaveVerdict[] | Error | undefined, cid: string): HTMLElement {
  if (verdicts === undefined) return h("span", { class: "muted" }, "not verified (no policy)");
  if (!v) return h("span", { class: "muted" }, `not checked: ${hex(cid).textContent}`);
  return h(
    "span",
    null,
    verdict(v.verified),
    v.claims ? h("span", { class: "muted" }, ` ${v.claims.teeType}${v.claims.simulated ? " SIMULATED" : ""}${v.claims.tcbStatus ? `, TCB ${v.claims.tcbStatus}` : ""}`) : null,
    v.reason ? h("div", { class: "reason" }, v.reason) : null,
    h("div", { class: "muted" }, "evidence ", h("code", { title: v.evidenceCid }, `${v.evidenceCid.slice(0, 14)}…`)),
  );
}
