import { getRandomValues } from "node:crypto";
import type { Rational } from "./rational.ts";

/**
 * Exact sampling of the discrete Laplace distribution (the two-sided geometric
 * distribution), P[Y = y] proportional to exp(-|y| / scale) over the integers,
 * after Canonne, Kamath and Steinke, "The Discrete Gaussian for Differential
 * Privacy" (NeurIPS 2020, arXiv:2004.00010), Algorithm 1 (Bernoulli(exp(-gamma))
 * for rational gamma) and Algorithm 2 (discrete Laplace with rational scale
 * t/s). Every step uses only exact integer arithmetic and uniform integers from
 * the operating system's CSPRNG (node:crypto getRandomValues), so there is no
 * floating-point rounding for an attacker to exploit (Mironov 2012).
 *
 * With scale = sensitivity / epsilon, adding one sample to an integer-valued
 * query of that L1 sensitivity is epsilon-differentially private.
 */

export type RandomSource = (bytes: Uint8Array) => void;

const cryptoRandom: RandomSource = (bytes) => {
  getRandomValues(bytes);
};

/** A uniform integer in [0, bound) by rejection over whole bytes (no modulo bias). */
export function uniformBelow(bound: bigint, random: RandomSource = cryptoRandom): bigint {
  if (bound <= 0n) throw new RangeError("bound must be positive");
  if (bound === 1n) return 0n;
  const bits = (bound - 1n).toString(2).length;
  const bytes = new Uint8Array(Math.ceil(bits / 8));
  const excess = BigInt(bytes.length * 8 - bits);
  for (;;) {
    random(bytes);
    let value = 0n;
    for (const byte of bytes) value = (value << 8n) | BigInt(byte);
    value >>= excess;
    if (value < bound) return value;
  }
}

/** Bernoulli(n / d) for 0 <= n <= d. */
function bernoulli(n: bigint, d: bigint, random: RandomSource): boolean {
  return uniformBelow(d, random) < n;
}

/** Bernoulli(exp(-n/d)) for n/d >= 0: CKS20 Algorithm 1. */
export function bernoulliExpMinus(n: bigint, d: bigint, random: RandomSource = cryptoRandom): boolean {
  if (n < 0n || d <= 0n) throw new RangeError("gamma must be a non-negative rational");
  if (n <= d) {
    // Draw A_k ~ Bernoulli(gamma/k) until one is 0; K odd with probability exp(-gamma).
    let k = 1n;
    while (bernoulli(n, d * k, random)) k += 1n;
    return k % 2n === 1n;
  }
  for (let i = 0n; i < n / d; i += 1n) if (!bernoulliExpMinus(1n, 1n, random)) return false;
  return bernoulliExpMinus(n % d, d, random);
}

/** One sample of the discrete Laplace with the given scale (> 0): CKS20 Algorithm 2 with scale t/s. */
export function sampleDiscreteLaplace(scale: Rational, random: RandomSource = cryptoRandom): bigint {
  if (scale.n <= 0n) throw new RangeError("scale must be positive");
  const t = scale.n;
  const s = scale.d;
  for (;;) {
    const u = uniformBelow(t, random);
    if (!bernoulliExpMinus(u, t, random)) continue;
    let v = 0n;
    while (bernoulliExpMinus(1n, 1n, random)) v += 1n;
    const y = (u + t * v) / s;
    const negative = uniformBelow(2n, random) === 1n;
    if (negative && y === 0n) continue;
    return negative ? -y : y;
  }
}
