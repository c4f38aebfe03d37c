/**
 * Exact non-negative rationals over BigInt, for the DP sampler and the epsilon
 * ledger: noise scales and budgets are compared and divided without floating
 * point, so "1.0 spent five times" is exactly the budget 5.0.
 */
export interface Rational {
  readonly n: bigint;
  readonly d: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

export function rational(n: bigint, d: bigint = 1n): Rational {
  if (d <= 0n || n < 0n) throw new RangeError("a rational here is non-negative with a positive denominator");
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
}

/** The decimal a policy writes (1.0, 0.25, 1e-3) as the exact rational it denotes, not its binary float. */
export function fromDecimal(x: number): Rational {
  if (!Number.isFinite(x) || x < 0) throw new RangeError("expected a finite non-negative number");
  const match = /^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(x));
  if (!match) throw new RangeError(`cannot read ${x} as a decimal`);
  const digits = BigInt(match[1]! + (match[2] ?? ""));
  const exponent = Number(match[3] ?? 0) - (match[2]?.length ?? 0);
  return exponent >= 0 ? rational(digits * 10n ** BigInt(exponent)) : rational(digits, 10n ** BigInt(-exponent));
}

export function add(a: Rational, b: Rational): Rational {
  return rational(a.n * b.d + b.n * a.d, a.d * b.d);
}

export function mul(a: Rational, b: Rational): Rational {
  return rational(a.n * b.n, a.d * b.d);
}

export function div(a: Rational, b: Rational): Rational {
  if (b.n === 0n) throw new RangeError("division by zero");
  return rational(a.n * b.d, a.d * b.n);
}

export function compare(a: Rational, b: Rational): number {
  const l = a.n * b.d;
  const r = b.n * a.d;
  return l < r ? -1 : l > r ? 1 : 0;
}

export function toNumber(a: Rational): number {
  return Number(a.n) / Number(a.d);
}
