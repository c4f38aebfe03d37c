/**
 * The AMD SEV-SNP attestation report (SEV-SNP Firmware ABI, ATTESTATION_REPORT):
 * 1184 bytes, little-endian, signed by the VCEK over bytes [0, 0x2A0).
 * Parsing checks only the layout; authenticity is established in verify.ts.
 */
import { AttestationError } from "../dcap/errors.ts";

export const SNP_REPORT_SIZE = 0x4a0;
/** The signed part of the report. */
export const SNP_SIGNED_SIZE = 0x2a0;
/** Report versions whose layout up to the signature matches what is read here. */
const SUPPORTED_VERSIONS = new Set([2, 3, 4, 5]);
/** SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384. */
export const SNP_SIG_ALGO_ECDSA_P384_SHA384 = 1;

/** A TCB_VERSION decoded into its security patch levels (SPLs). */
export interface SnpTcb {
  /** The raw 64-bit value, little-endian hex as it appears in the report. */
  rawHex: string;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later only (FMC SPL). */
  fmc?: number;
}

/** Decoded GUEST_POLICY (bits as in the ABI spec). */
export interface SnpPolicy {
  raw: bigint;
  abiMinor: number;
  abiMajor: number;
  smtAllowed: boolean;
  migrateMa: boolean;
  debugAllowed: boolean;
  singleSocket: boolean;
}

export interface SnpReport {
  version: number;
  guestSvn: number;
  policy: SnpPolicy;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: SnpTcb;
  platformInfo: bigint;
  /** Bit 0 of the key-info word: an author key signed the ID block. */
  authorKeyEn: boolean;
  /** Bit 1: the chip id was masked to zeros. */
  maskChipId: boolean;
  /** Bits 2..4: 0 = VCEK, 1 = VLEK, 7 = none. */
  signingKey: number;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: SnpTcb;
  /** CPUID family / model / stepping (report version 3 and later; else undefined). */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  committedTcb: SnpTcb;
  currentVersion: string;
  committedVersion: string;
  launchTcb: SnpTcb;
  /** The bytes covered by the signature. */
  signedBytes: Uint8Array;
  /** r and s as 48-byte big-endian integers. */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
}

/** Turin (family 0x1A) moved the SPL bytes; earlier parts share one layout. */
function decodeTcb(raw: Uint8Array, turin: boolean): SnpTcb {
  const rawHex = Buffer.from(raw).toString("hex");
  if (turin) {
    return { rawHex, fmc: raw[0]!, bootloader: raw[1]!, tee: raw[2]!, snp: raw[3]!, microcode: raw[7]! };
  }
  return { rawHex, bootloader: raw[0]!, tee: raw[1]!, snp: raw[6]!, microcode: raw[7]! };
}

function decodePolicy(raw: bigint): SnpPolicy {
  const bit = (n: number) => ((raw >> BigInt(n)) & 1n) === 1n;
  return {
    raw,
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smtAllowed: bit(16),
    migrateMa: bit(18),
    debugAllowed: bit(19),
    singleSocket: bit(20),
  };
}

/** A 72-byte little-endian signature component → 48-byte big-endian; the top 24 bytes must be zero. */
function signatureComponent(field: Uint8Array, name: string): Uint8Array {
  if (field.subarray(48).some((b) => b !== 0)) {
    throw new AttestationError("REPORT_MALFORMED", `SEV-SNP report: signature ${name} has non-zero bytes above the 48-byte P-384 range`);
  }
  return Uint8Array.from(field.subarray(0, 48)).reverse();
}

export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (bytes.length !== SNP_REPORT_SIZE) {
    throw new AttestationError(
      "REPORT_MALFORMED",
      `SEV-SNP report must be exactly ${SNP_REPORT_SIZE} bytes, got ${bytes.length}. Pass the raw report as read from the guest (e.g. configfs-tsm outblob), not a hex or base64 text.`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number) => view.getBigUint64(o, true);
  const at = (o: number, n: number) => bytes.slice(o, o + n);

  const version = u32(0x00);
  if (!SUPPORTED_VERSIONS.has(version)) {
    throw new AttestationError("REPORT_MALFORMED", `SEV-SNP report version ${version} is not supported (supported: 2 to 5)`);
  }
  const cpuid = version >= 3 ? { family: bytes[0x188]!, model: bytes[0x189]!, stepping: bytes[0x18a]! } : undefined;
  const turin = cpuid !== undefined && cpuid.family >= 0x1a;
  const keyInfo = u32(0x48);
  const ver = (o: number) => `${bytes[o + 2]}.${bytes[o + 1]}.${bytes[o]}`;

  return {
    version,
    guestSvn: u32(0x04),
    policy: decodePolicy(u64(0x08)),
    familyId: at(0x10, 16),
    imageId: at(0x20, 16),
    vmpl: u32(0x30),
    signatureAlgo: u32(0x34),
    currentTcb: decodeTcb(at(0x38, 8), turin),
    platformInfo: u64(0x40),
    authorKeyEn: (keyInfo & 1) === 1,
    maskChipId: ((keyInfo >> 1) & 1) === 1,
    signingKey: (keyInfo >> 2) & 7,
    reportData: at(0x50, 64),
    measurement: at(0x90, 48),
    hostData: at(0xc0, 32),
    idKeyDigest: at(0xe0, 48),
    authorKeyDigest: at(0x110, 48),
    reportId: at(0x140, 32),
    reportIdMa: at(0x160, 32),
    reportedTcb: decodeTcb(at(0x180, 8), turin),
    ...(cpuid ? { cpuid } : {}),
    chipId: at(0x1a0, 64),
    committedTcb: decodeTcb(at(0x1e0, 8), turin),
    currentVersion: ver(0x1e8),
    committedVersion: ver(0x1ec),
    launchTcb: decodeTcb(at(0x1f0, 8), turin),
    signedBytes: at(0, SNP_SIGNED_SIZE),
    signatureR: signatureComponent(at(0x2a0, 72), "r"),
    signatureS: signatureComponent(at(0x2e8, 72), "s"),
  };
}
