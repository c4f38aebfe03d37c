/** Shared loaders for the DCAP tests: the real Intel vectors in ../shared/testdata/attestation. */
import { readFileSync } from "node:fs";
import type { DcapCollateral } from "../../src/attestation/types.ts";

export const VECTORS = new URL("../../../shared/testdata/attestation/", import.meta.url);

export interface DcapCase {
  name: string;
  quote_file: string;
  collateral_file: string;
  now_secs: number;
  validity_window: { not_before: number; not_after: number };
  expect: {
    ok: boolean;
    tcb_status: string | null;
    advisory_ids?: string[];
    tee_type: "SGX" | "TDX";
    quote_version: number;
    mr_enclave?: string;
    mr_signer?: string;
    isv_prod_id?: number;
    isv_svn?: number;
    mr_td?: string;
    td_report_type?: string;
    report_data: string;
    fmspc: string;
    pck_ca: "processor" | "platform";
  };
}

export function vectorBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, VECTORS)));
}

export function vectorCollateral(name: string): DcapCollateral {
  return JSON.parse(readFileSync(new URL(name, VECTORS), "utf8")) as DcapCollateral;
}

export const intelRoot = (): Uint8Array => vectorBytes("intel_sgx_root_ca.der");

export const cases = (): DcapCase[] => JSON.parse(readFileSync(new URL("cases.json", VECTORS), "utf8")) as DcapCase[];

export function caseNamed(name: string): DcapCase {
  const c = cases().find((x) => x.name === name);
  if (!c) throw new Error(`no case ${name}`);
  return c;
}
