/**
 * The simulated vendor PKI: a stand-in for Intel's SGX provisioning PKI with
 * the same shape (Root CA -> PCK Processor CA -> per-platform PCK leaf
 * certificates carrying the SGX extension; Root CA -> TCB Signing
 * certificate; CRLs for the Root CA and the PCK CA), all ECDSA P-256. Every
 * name says SIMULATED, and every subject names the SIMULATED TEE
 * organization (dcap/simulated-marks.ts), so its evidence is marked simulated
 * whatever root list a verifier puts it in. Verifiers trust it only when
 * told to (simulatedRoots).
 *
 * Everything is derived from a 32-byte seed with deterministic signatures,
 * so a seed reproduces the PKI byte for byte; `loadOrCreateSimPki(dir)` keeps
 * the seed, the platforms and the revocations in `<dir>/sim-pki.json` so the
 * attestation service, nodes and SDK of one network share one simulated root.
 */
// @peculiar/x509 needs a Reflect metadata polyfill loaded before it.
import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import { link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { Integer } from "asn1js";
import { SIMULATED_TEE_ORGANIZATION } from "../dcap/simulated-marks.ts";
import { deriveBytes, deriveKey, deterministicCrypto, type SimKey } from "./keys.ts";
import { encodeSgxExtension, SGX_EXTENSION_OID } from "./sgx-extension.ts";
import { CloisterError } from "../../util/base-error.ts";

x509.cryptoProvider.set(webcrypto);

// The organization is the mark a verifier recognizes simulated certificates by.
export const SIM_ROOT_CA_NAME = `CN=Cloister SIMULATED SGX Root CA, O=${SIMULATED_TEE_ORGANIZATION}`;
export const SIM_PCK_CA_NAME = `CN=Cloister SIMULATED SGX PCK Processor CA, O=${SIMULATED_TEE_ORGANIZATION}`;
export const SIM_PCK_LEAF_NAME = `CN=Cloister SIMULATED SGX PCK Certificate, O=${SIMULATED_TEE_ORGANIZATION}`;
export const SIM_TCB_SIGNING_NAME = `CN=Cloister SIMULATED SGX TCB Signing, O=${SIMULATED_TEE_ORGANIZATION}`;

/** FMSPC of every simulated platform ("C1057E" reads "CLOSTE"); Intel never issues it. */
export const SIM_FMSPC = "C1057E000000";
export const SIM_PCE_ID = "0000";
/** The TCB the simulated network treats as current (UpToDate). */
export const SIM_CURRENT_TCB: readonly number[] = [3, 3, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
export const SIM_CURRENT_PCE_SVN = 13;

const PKI_FILE = "sim-pki.json";
const ROOT_PEM_FILE = "sim-root-ca.pem";
const FORMAT = "cloister-sim-pki-v1";
const CRL_BASE = "https://simulated.cloister.invalid/sgx/certification/v4";
// Fixed validity so a seed reproduces the certificates exactly.
const NOT_BEFORE = new Date("2024-01-01T00:00:00Z");
const NOT_AFTER = new Date("2049-12-31T23:59:59Z");
const SIGNING = { name: "ECDSA", hash: "SHA-256" };

export type SimPkiErrorCode = "SIM_PKI_BAD_PLATFORM" | "SIM_PKI_BAD_SEED" | "SIM_PKI_CORRUPT" | "SIM_PKI_DUPLICATE_PLATFORM" | "SIM_PKI_UNKNOWN_PLATFORM" | "SIM_PKI_BAD_SERIAL";

export class SimPkiError extends CloisterError<SimPkiErrorCode> {}

/** A platform's TCB; omitted fields take the network's current TCB. */
export interface SimPlatformSpec {
  name: string;
  tcbComponents?: number[];
  pceSvn?: number;
}

export interface SimPlatform {
  name: string;
  ppid: Uint8Array;
  fmspc: string;
  pceId: string;
  /** 16 SGX TCB component SVNs, also the platform's CPUSVN. */
  tcbComponents: number[];
  pceSvn: number;
  pckKey: SimKey;
  /** The (simulated) quoting enclave's ECDSA attestation key on this platform. */
  attestationKey: SimKey;
  pckCert: x509.X509Certificate;
  /** Lowercase hex, as in CRL entries. */
  pckSerial: string;
}

export interface SimCa {
  key: SimKey;
  cert: x509.X509Certificate;
  keyId: string;
}

export interface SimRevocation {
  serial: string;
  revokedAt: string;
}

export interface SimPki {
  /** Marks every object of the simulated TEE. */
  readonly simulated: true;
  seed: Uint8Array;
  /** Where the PKI is persisted (absent for an in-memory PKI). */
  dir?: string;
  root: SimCa;
  pckCa: SimCa;
  tcbSigning: SimCa;
  platforms: SimPlatform[];
  revoked: SimRevocation[];
}

interface PersistedPki {
  format: string;
  notice: string;
  seed: string;
  platforms: SimPlatformSpec[];
  revoked: SimRevocation[];
}

const crypto = deterministicCrypto();

function serialFor(seed: Uint8Array, label: string): string {
  const bytes = deriveBytes(seed, `serial/${label}`, 20);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01; // positive and without a leading zero octet
  return Buffer.from(bytes).toString("hex");
}

async function keyIdOf(key: SimKey): Promise<string> {
  return (await x509.SubjectKeyIdentifierExtension.create(key.publicKey, false, crypto)).keyId;
}

interface CertRequest {
  serial: string;
  subject: string;
  issuer: string;
  key: SimKey;
  keyId: string;
  issuerKey: SimKey;
  issuerKeyId: string;
  crlUrl: string;
  usages: x509.KeyUsageFlags;
  ca: boolean;
  pathLength?: number;
  extra?: x509.Extension[];
}

// Extensions in the order Intel's certificates carry them.
async function issueCertificate(req: CertRequest): Promise<x509.X509Certificate> {
  const extensions: x509.Extension[] = [
    new x509.AuthorityKeyIdentifierExtension(req.issuerKeyId),
    new x509.CRLDistributionPointsExtension([req.crlUrl]),
    await x509.SubjectKeyIdentifierExtension.create(req.key.publicKey, false, crypto),
    new x509.KeyUsagesExtension(req.usages, true),
    new x509.BasicConstraintsExtension(req.ca, req.pathLength, true),
    ...(req.extra ?? []),
  ];
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: req.serial,
      subject: req.subject,
      issuer: req.issuer,
      notBefore: NOT_BEFORE,
      notAfter: NOT_AFTER,
      publicKey: req.key.publicKey,
      signingKey: req.issuerKey.privateKey,
      signingAlgorithm: SIGNING,
      extensions,
    },
    crypto,
  );
}

async function makeCa(seed: Uint8Array, label: string): Promise<{ key: SimKey; keyId: string }> {
  const key = await deriveKey(seed, label);
  return { key, keyId: await keyIdOf(key) };
}

function checkSpec(spec: SimPlatformSpec): Required<SimPlatformSpec> {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(spec.name)) {
    throw new SimPkiError("SIM_PKI_BAD_PLATFORM", `Simulated platform name "${spec.name}" is invalid: use 1-64 letters, digits, ".", "_" or "-".`);
  }
  const tcbComponents = spec.tcbComponents ?? [...SIM_CURRENT_TCB];
  if (tcbComponents.length !== 16 || tcbComponents.some((svn) => !Number.isInteger(svn) || svn < 0 || svn > 255)) {
    throw new SimPkiError("SIM_PKI_BAD_PLATFORM", `Simulated platform "${spec.name}": tcbComponents must be 16 integers in 0..255.`);
  }
  const pceSvn = spec.pceSvn ?? SIM_CURRENT_PCE_SVN;
  if (!Number.isInteger(pceSvn) || pceSvn < 0 || pceSvn > 0xffff) {
    throw new SimPkiError("SIM_PKI_BAD_PLATFORM", `Simulated platform "${spec.name}": pceSvn must be an integer in 0..65535.`);
  }
  return { name: spec.name, tcbComponents, pceSvn };
}

async function makePlatform(seed: Uint8Array, pckCa: SimCa, input: SimPlatformSpec): Promise<SimPlatform> {
  const spec = checkSpec(input);
  const pckKey = await deriveKey(seed, `platform/${spec.name}/pck`);
  const attestationKey = await deriveKey(seed, `platform/${spec.name}/qe-attestation`);
  const ppid = deriveBytes(seed, `platform/${spec.name}/ppid`, 16);
  const pckSerial = serialFor(seed, `platform/${spec.name}/pck`);
  const sgx = encodeSgxExtension({
    ppid,
    tcbComponents: spec.tcbComponents,
    pceSvn: spec.pceSvn,
    pceId: Buffer.from(SIM_PCE_ID, "hex"),
    fmspc: Buffer.from(SIM_FMSPC, "hex"),
    sgxType: 0,
  });
  const pckCert = await issueCertificate({
    serial: pckSerial,
    subject: SIM_PCK_LEAF_NAME,
    issuer: SIM_PCK_CA_NAME,
    key: pckKey,
    keyId: await keyIdOf(pckKey),
    issuerKey: pckCa.key,
    issuerKeyId: pckCa.keyId,
    crlUrl: `${CRL_BASE}/pckcrl?ca=processor&encoding=der`,
    usages: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
    ca: false,
    extra: [new x509.Extension(SGX_EXTENSION_OID, false, sgx)],
  });
  return { name: spec.name, ppid, fmspc: SIM_FMSPC, pceId: SIM_PCE_ID, tcbComponents: spec.tcbComponents, pceSvn: spec.pceSvn, pckKey, attestationKey, pckCert, pckSerial };
}

function parseSeed(seed: Uint8Array | string | undefined): Uint8Array {
  if (seed === undefined) return new Uint8Array(randomBytes(32));
  const bytes = typeof seed === "string" ? new Uint8Array(Buffer.from(seed, "hex")) : seed;
  if (bytes.length !== 32 || (typeof seed === "string" && !/^[0-9a-fA-F]{64}$/.test(seed))) {
    throw new SimPkiError("SIM_PKI_BAD_SEED", "The simulated PKI seed must be 32 bytes (64 hex characters).");
  }
  return bytes;
}

export interface CreateSimPkiOptions {
  /** 32 bytes or 64 hex characters; random when omitted. */
  seed?: Uint8Array | string;
  /** Platforms to certify; default one platform "platform-0" at the current TCB. */
  platforms?: SimPlatformSpec[];
}

/** Builds a simulated PKI in memory (deterministic for a given seed). */
export async function createSimPki(options: CreateSimPkiOptions = {}): Promise<SimPki> {
  const seed = parseSeed(options.seed);
  const rootCa = await makeCa(seed, "root-ca");
  const rootCert = await issueCertificate({
    serial: serialFor(seed, "root-ca"),
    subject: SIM_ROOT_CA_NAME,
    issuer: SIM_ROOT_CA_NAME,
    ...rootCa,
    issuerKey: rootCa.key,
    issuerKeyId: rootCa.keyId,
    crlUrl: `${CRL_BASE}/rootcacrl`,
    usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    ca: true,
    pathLength: 1,
  });
  const root: SimCa = { ...rootCa, cert: rootCert };
  const pck = await makeCa(seed, "pck-processor-ca");
  const pckCa: SimCa = {
    ...pck,
    cert: await issueCertificate({
      serial: serialFor(seed, "pck-processor-ca"),
      subject: SIM_PCK_CA_NAME,
      issuer: SIM_ROOT_CA_NAME,
      ...pck,
      issuerKey: root.key,
      issuerKeyId: root.keyId,
      crlUrl: `${CRL_BASE}/rootcacrl`,
      usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
      ca: true,
      pathLength: 0,
    }),
  };
  const tcb = await makeCa(seed, "tcb-signing");
  const tcbSigning: SimCa = {
    ...tcb,
    cert: await issueCertificate({
      serial: serialFor(seed, "tcb-signing"),
      subject: SIM_TCB_SIGNING_NAME,
      issuer: SIM_ROOT_CA_NAME,
      ...tcb,
      issuerKey: root.key,
      issuerKeyId: root.keyId,
      crlUrl: `${CRL_BASE}/rootcacrl`,
      usages: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
      ca: false,
    }),
  };
  const pki: SimPki = { simulated: true, seed, root, pckCa, tcbSigning, platforms: [], revoked: [] };
  for (const spec of options.platforms ?? [{ name: "platform-0" }]) await addSimPlatform(pki, spec);
  return pki;
}

function persisted(pki: SimPki): PersistedPki {
  return {
    format: FORMAT,
    notice: "SIMULATED TEE vendor PKI for Cloister development networks. Not Intel; proves nothing about hardware. Whoever holds this seed can forge simulated quotes.",
    seed: Buffer.from(pki.seed).toString("hex"),
    platforms: pki.platforms.map((p) => ({ name: p.name, tcbComponents: p.tcbComponents, pceSvn: p.pceSvn })),
    revoked: pki.revoked,
  };
}

async function save(pki: SimPki): Promise<void> {
  if (!pki.dir) return;
  const tmp = join(pki.dir, `${PKI_FILE}.${process.pid}.${Date.now()}.tmp`);
  await writeFile(tmp, `${JSON.stringify(persisted(pki), null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, join(pki.dir, PKI_FILE));
  await writeFile(join(pki.dir, ROOT_PEM_FILE), `${simRootPem(pki)}\n`);
}

async function load(dir: string, text: string): Promise<SimPki> {
  let data: PersistedPki;
  try {
    data = JSON.parse(text) as PersistedPki;
  } catch {
    throw new SimPkiError("SIM_PKI_CORRUPT", `${join(dir, PKI_FILE)} is not valid JSON; delete the directory to create a new simulated PKI.`);
  }
  if (data.format !== FORMAT || typeof data.seed !== "string" || !Array.isArray(data.platforms) || !Array.isArray(data.revoked)) {
    throw new SimPkiError("SIM_PKI_CORRUPT", `${join(dir, PKI_FILE)} is not a ${FORMAT} file; delete the directory to create a new simulated PKI.`);
  }
  const pki = await createSimPki({ seed: data.seed, platforms: data.platforms });
  pki.revoked = data.revoked;
  pki.dir = dir;
  return pki;
}

/**
 * Loads the simulated PKI persisted in `dir`, or creates one (random seed
 * unless given) and persists it. Safe when several processes race: the first
 * writer wins and the others load its file.
 */
export async function loadOrCreateSimPki(dir: string, options: CreateSimPkiOptions = {}): Promise<SimPki> {
  const file = join(dir, PKI_FILE);
  try {
    return await load(dir, await readFile(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dir, { recursive: true });
  const pki = await createSimPki(options);
  // Written whole to a file of this process's, then linked into place: link fails if another process won,
  // and a racing reader never sees a half-written file.
  const tmp = join(dir, `${PKI_FILE}.${process.pid}.${Date.now()}.tmp`);
  await writeFile(tmp, `${JSON.stringify(persisted(pki), null, 2)}\n`, { mode: 0o600 });
  try {
    await link(tmp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return load(dir, await readFile(file, "utf8"));
    throw error;
  } finally {
    await unlink(tmp);
  }
  pki.dir = dir;
  const pemTmp = join(dir, `${ROOT_PEM_FILE}.${process.pid}.tmp`);
  await writeFile(pemTmp, `${simRootPem(pki)}\n`);
  await rename(pemTmp, join(dir, ROOT_PEM_FILE));
  return pki;
}

/** Certifies another platform (persisted when the PKI has a directory). */
export async function addSimPlatform(pki: SimPki, spec: SimPlatformSpec): Promise<SimPlatform> {
  if (pki.platforms.some((p) => p.name === spec.name)) {
    throw new SimPkiError("SIM_PKI_DUPLICATE_PLATFORM", `Simulated platform "${spec.name}" already exists; pick another name.`);
  }
  const platform = await makePlatform(pki.seed, pki.pckCa, spec);
  pki.platforms.push(platform);
  await save(pki);
  return platform;
}

export function getSimPlatform(pki: SimPki, name?: string): SimPlatform {
  const platform = name === undefined ? pki.platforms[0] : pki.platforms.find((p) => p.name === name);
  if (!platform) {
    throw new SimPkiError("SIM_PKI_UNKNOWN_PLATFORM", `Simulated platform "${name ?? "(default)"}" does not exist; create it with addSimPlatform.`);
  }
  return platform;
}

/** Puts a PCK certificate (hex serial) on the simulated PCK CA's CRL. */
export async function revokePckCertificate(pki: SimPki, serial: string, at: Date = new Date()): Promise<void> {
  const normalized = serial.toLowerCase().replace(/^(00)+/, "");
  if (!/^[0-9a-f]+$/.test(normalized)) throw new SimPkiError("SIM_PKI_BAD_SERIAL", `"${serial}" is not a hex certificate serial number.`);
  if (pki.revoked.some((r) => r.serial === normalized)) return;
  pki.revoked.push({ serial: normalized, revokedAt: at.toISOString() });
  await save(pki);
}

export function simRootDer(pki: SimPki): Uint8Array {
  return new Uint8Array(pki.root.cert.rawData);
}

export function simRootPem(pki: SimPki): string {
  return pki.root.cert.toString("pem");
}

/** PEM chain as quotes carry it (certification data type 5): leaf, PCK CA, root. */
export function pckChainPem(pki: SimPki, platform: SimPlatform): string {
  return [platform.pckCert, pki.pckCa.cert, pki.root.cert].map((c) => c.toString("pem")).join("\n") + "\n";
}

/** PEM chain for the TCB info and QE identity signatures: TCB signing, root. */
export function tcbIssuerChainPem(pki: SimPki): string {
  return [pki.tcbSigning.cert, pki.root.cert].map((c) => c.toString("pem")).join("\n") + "\n";
}

/** PEM chain of the PCK CRL issuer: PCK CA, root. */
export function pckCrlIssuerChainPem(pki: SimPki): string {
  return [pki.pckCa.cert, pki.root.cert].map((c) => c.toString("pem")).join("\n") + "\n";
}

export interface CrlWindow {
  thisUpdate: Date;
  nextUpdate: Date;
}

async function issueCrl(issuer: string, ca: SimCa, window: CrlWindow, entries: SimRevocation[]): Promise<Uint8Array> {
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer,
      thisUpdate: window.thisUpdate,
      nextUpdate: window.nextUpdate,
      // A reason code keeps crlEntryExtensions non-empty (RFC 5280 forbids an empty SEQUENCE).
      entries: entries.map((r) => ({ serialNumber: r.serial, revocationDate: new Date(r.revokedAt), reason: x509.X509CrlReason.keyCompromise })),
      extensions: [new x509.Extension("2.5.29.20", false, new Integer({ value: 1 }).toBER()), new x509.AuthorityKeyIdentifierExtension(ca.keyId)],
      signingKey: ca.key.privateKey,
      signingAlgorithm: SIGNING,
    },
    crypto,
  );
  return new Uint8Array(crl.rawData);
}

/** DER CRL of the simulated root (it never revokes its intermediates). */
export function issueRootCaCrl(pki: SimPki, window: CrlWindow): Promise<Uint8Array> {
  return issueCrl(SIM_ROOT_CA_NAME, pki.root, window, []);
}

/** DER CRL of the simulated PCK Processor CA, listing revoked PCK certificates. */
export function issuePckCrl(pki: SimPki, window: CrlWindow): Promise<Uint8Array> {
  return issueCrl(SIM_PCK_CA_NAME, pki.pckCa, window, pki.revoked);
}
