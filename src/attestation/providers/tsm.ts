/**
 * Linux configfs-tsm attestation (TDX and SEV-SNP guests): create a report
 * entry under /sys/kernel/config/tsm/report, write the 64-byte report data to
 * `inblob`, read the quote or report from `outblob`, and compare `generation`
 * before and after to detect a concurrent writer. `provider` says which TEE
 * produced it ("tdx_guest" or "sev_guest"); for SEV-SNP, `auxblob` may carry
 * the VCEK/ASK/ARK certificate table. The root is configurable so tests run
 * against a fake tree. TDX collateral is left to the verifier.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AttestationProvider, Evidence, SnpCollateral, TeeType } from "../types.ts";
import { checkReportData, isErrno, ProviderError, ProviderUnavailableError } from "./errors.ts";

export interface TsmProviderOptions {
  /** Filesystem root holding sys/kernel/config/tsm (default "/"). */
  root?: string;
  /** Name of the report entry; default a fresh unique name per report. An existing entry of this name is reused. */
  entryName?: string;
  /** SEV-SNP certificates to use when the kernel supplies no auxblob. */
  snpCollateral?: SnpCollateral;
}

const PROVIDERS: Record<string, TeeType> = { tdx_guest: "TDX", sev_guest: "SEV-SNP" };
const TDX_MRTD_OFFSET = 48 + 16 + 48 + 48 + 8 + 8 + 8;
const SNP_MEASUREMENT_OFFSET = 0x90;
const SNP_REPORT_LEN = 0x4a0;
const MAX_ATTEMPTS = 3;

// SEV certificate table GUIDs (GHCB spec), as they appear in memory (mixed-endian).
const GUID_VCEK = "63da758d-e664-4564-adc5-f4b93be8accd";
const GUID_ASK = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
const GUID_ARK = "c0b406a4-a803-4952-9743-3fb6014cd0ae";

function guidAt(bytes: Buffer, offset: number): string {
  const h = (start: number, end: number, reverse: boolean) => {
    const part = Buffer.from(bytes.subarray(offset + start, offset + end));
    return (reverse ? part.reverse() : part).toString("hex");
  };
  return `${h(0, 4, true)}-${h(4, 6, true)}-${h(6, 8, true)}-${h(8, 10, false)}-${h(10, 16, false)}`;
}

function pem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** Parses the SEV-SNP certificate table (GUID, offset u32, length u32 entries; all-zero terminator). */
export function parseSnpCertTable(table: Uint8Array): Map<string, Uint8Array> {
  const bytes = Buffer.from(table.buffer, table.byteOffset, table.byteLength);
  const certs = new Map<string, Uint8Array>();
  for (let at = 0; at + 24 <= bytes.length; at += 24) {
    const guid = guidAt(bytes, at);
    const offset = bytes.readUInt32LE(at + 16);
    const length = bytes.readUInt32LE(at + 20);
    if (guid === "00000000-0000-0000-0000-000000000000" && offset === 0 && length === 0) return certs;
    if (offset + length > bytes.length) throw new ProviderError("PROVIDER_BAD_OUTPUT", `SEV-SNP certificate table entry ${guid} points outside the auxblob.`);
    certs.set(guid, new Uint8Array(bytes.subarray(offset, offset + length)));
  }
  throw new ProviderError("PROVIDER_BAD_OUTPUT", "SEV-SNP certificate table has no terminating entry.");
}

/** Builds a certificate table (for tests and tooling): entries then the certificates. */
export function encodeSnpCertTable(entries: Array<{ guid: string; der: Uint8Array }>): Uint8Array {
  const headerLen = (entries.length + 1) * 24;
  const out = Buffer.alloc(headerLen + entries.reduce((n, e) => n + e.der.length, 0));
  let dataAt = headerLen;
  entries.forEach((entry, i) => {
    const hexGuid = entry.guid.replace(/-/g, "");
    const raw = Buffer.from(hexGuid, "hex");
    const mixed = Buffer.concat([raw.subarray(0, 4).reverse(), raw.subarray(4, 6).reverse(), raw.subarray(6, 8).reverse(), raw.subarray(8)]);
    mixed.copy(out, i * 24);
    out.writeUInt32LE(dataAt, i * 24 + 16);
    out.writeUInt32LE(entry.der.length, i * 24 + 20);
    out.set(entry.der, dataAt);
    dataAt += entry.der.length;
  });
  return new Uint8Array(out);
}

export const SNP_CERT_GUIDS = { vcek: GUID_VCEK, ask: GUID_ASK, ark: GUID_ARK } as const;

export class TsmProvider implements AttestationProvider {
  readonly name = "tsm";
  readonly teeType: TeeType;
  readonly simulated = false;
  readonly #reportDir: string;
  readonly #options: TsmProviderOptions;

  /** Use `TsmProvider.open`, which finds out which TEE the kernel's TSM provider is. */
  constructor(teeType: TeeType, options: TsmProviderOptions = {}) {
    if (teeType === "SGX") throw new ProviderError("PROVIDER_CONFIG", "configfs-tsm serves TDX and SEV-SNP guests, not SGX; use the gramine provider for SGX.");
    this.teeType = teeType;
    this.#options = options;
    this.#reportDir = join(options.root ?? "/", "sys", "kernel", "config", "tsm", "report");
  }

  /** Opens the provider after reading which TEE configfs-tsm reports for. */
  static async open(options: TsmProviderOptions = {}): Promise<TsmProvider> {
    const probe = new TsmProvider("TDX", options);
    const teeType = await probe.#withEntry(async (entry) => probe.#readProvider(entry));
    return new TsmProvider(teeType, options);
  }

  async measurement(): Promise<string> {
    const evidence = await this.attest(new Uint8Array(64));
    if (evidence.teeType === "SEV-SNP") return Buffer.from(evidence.report.subarray(SNP_MEASUREMENT_OFFSET, SNP_MEASUREMENT_OFFSET + 48)).toString("hex");
    return Buffer.from(evidence.quote.subarray(TDX_MRTD_OFFSET, TDX_MRTD_OFFSET + 48)).toString("hex");
  }

  async attest(reportData: Uint8Array): Promise<Evidence> {
    checkReportData(reportData);
    return this.#withEntry(async (entry) => {
      const teeType = await this.#readProvider(entry);
      if (teeType !== this.teeType) {
        throw new ProviderError("PROVIDER_CONFIG", `configfs-tsm reports for ${teeType}, but this provider was opened for ${this.teeType}.`);
      }
      const { outblob, auxblob } = await this.#generate(entry, reportData);
      if (teeType === "TDX") {
        if (outblob.length < 48 + 584 || outblob.readUInt16LE(0) < 4) throw new ProviderError("PROVIDER_BAD_OUTPUT", `configfs-tsm returned ${outblob.length} bytes that are not a TDX quote.`);
        return { teeType: "TDX", quote: new Uint8Array(outblob) };
      }
      if (outblob.length < SNP_REPORT_LEN) throw new ProviderError("PROVIDER_BAD_OUTPUT", `configfs-tsm returned ${outblob.length} bytes, an SEV-SNP report has ${SNP_REPORT_LEN}.`);
      return { teeType: "SEV-SNP", report: new Uint8Array(outblob.subarray(0, SNP_REPORT_LEN)), collateral: this.#snpCollateral(auxblob) };
    });
  }

  async #withEntry<T>(use: (entry: string) => Promise<T>): Promise<T> {
    const name = this.#options.entryName ?? `cloister-${process.pid}-${randomBytes(6).toString("hex")}`;
    const entry = join(this.#reportDir, name);
    let created = false;
    try {
      await mkdir(entry);
      created = true;
    } catch (error) {
      if (isErrno(error, "ENOENT")) throw new ProviderUnavailableError(this.name, this.#reportDir, "configfs-tsm report directory does not exist (not a TDX / SEV-SNP guest, or configfs not mounted)", { cause: error });
      if (!(isErrno(error, "EEXIST") && this.#options.entryName)) throw this.#ioError(entry, error);
    }
    try {
      return await use(entry);
    } finally {
      // configfs removes the attribute files with the entry; best effort.
      if (created) await rmdir(entry).catch(() => undefined);
    }
  }

  async #readProvider(entry: string): Promise<TeeType> {
    const name = (await this.#read(join(entry, "provider"))).toString("utf8").trim();
    const teeType = PROVIDERS[name];
    if (!teeType) throw new ProviderUnavailableError(this.name, join(entry, "provider"), `configfs-tsm provider "${name}" is not supported (expected tdx_guest or sev_guest)`);
    return teeType;
  }

  async #generate(entry: string, reportData: Uint8Array): Promise<{ outblob: Buffer; auxblob?: Buffer }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await writeFile(join(entry, "inblob"), reportData);
      } catch (error) {
        throw this.#ioError(join(entry, "inblob"), error);
      }
      const generation = await this.#generation(entry);
      const outblob = await this.#read(join(entry, "outblob"));
      const auxblob = this.teeType === "SEV-SNP" ? await this.#read(join(entry, "auxblob")).catch(() => undefined) : undefined;
      // A changed generation means another writer touched the entry between our write and read.
      if ((await this.#generation(entry)) === generation) return { outblob, ...(auxblob?.length ? { auxblob } : {}) };
    }
    throw new ProviderError("PROVIDER_IO", `configfs-tsm entry ${entry} kept changing under concurrent writers; retry, or give each process its own entry.`);
  }

  #snpCollateral(auxblob: Buffer | undefined): SnpCollateral {
    if (auxblob) {
      const certs = parseSnpCertTable(auxblob);
      const vcek = certs.get(GUID_VCEK);
      const ask = certs.get(GUID_ASK);
      const ark = certs.get(GUID_ARK);
      if (vcek && ask && ark) return { vcek, chainPem: pem(Buffer.from(ask)) + pem(Buffer.from(ark)) };
    }
    if (this.#options.snpCollateral) return this.#options.snpCollateral;
    throw new ProviderError("PROVIDER_CONFIG", "The SEV-SNP report came without VCEK/ASK/ARK certificates (no auxblob from the host); pass snpCollateral (from AMD KDS) to the tsm provider.");
  }

  async #generation(entry: string): Promise<string> {
    return (await this.#read(join(entry, "generation"))).toString("utf8").trim();
  }

  async #read(path: string): Promise<Buffer> {
    try {
      return await readFile(path);
    } catch (error) {
      if (isErrno(error, "ENOENT")) throw new ProviderUnavailableError(this.name, path, "configfs-tsm attribute is missing (kernel without this TSM feature?)", { cause: error });
      throw this.#ioError(path, error);
    }
  }

  #ioError(path: string, error: unknown): ProviderError {
    return new ProviderError("PROVIDER_IO", `configfs-tsm ${path}: ${(error as Error).message}`, { cause: error });
  }
}
