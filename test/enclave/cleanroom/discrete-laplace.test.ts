/** The discrete Laplace sampler: integers, mean 0, the theoretical variance 2p/(1-p)^2, symmetric, P[0] = (1-p)/(1+p). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { bernoulliExpMinus, sampleDiscreteLaplace, uniformBelow } from "../../../src/enclave/cleanroom/discrete-laplace.ts";
import { rational } from "../../../src/enclave/cleanroom/rational.ts";

test("20,000 samples at scale 2 match the two-sided geometric distribution", () => {
  const n = 20_000;
  const scale = 2;
  const p = Math.exp(-1 / scale);
  const samples: bigint[] = [];
  for (let i = 0; i < n; i++) samples.push(sampleDiscreteLaplace(rational(2n)));
  assert.ok(samples.every((s) => typeof s === "bigint"));
  const values = samples.map(Number);
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  const expectedVariance = (2 * p) / (1 - p) ** 2; // 7.83
  // Standard errors: mean ~0.02, variance ~0.125 (Laplace kurtosis 6); bounds are about 4-5 of them.
  assert.ok(Math.abs(mean) < 0.1, `mean ${mean}`);
  assert.ok(Math.abs(variance - expectedVariance) / expectedVariance < 0.07, `variance ${variance}, expected ${expectedVariance}`);
  const positive = values.filter((v) => v > 0).length;
  const negative = values.filter((v) => v < 0).length;
  assert.ok(Math.abs(positive - negative) < 600, `${positive} positive against ${negative} negative`);
  const zeros = values.filter((v) => v === 0).length / n;
  assert.ok(Math.abs(zeros - (1 - p) / (1 + p)) < 0.015, `P[0] ${zeros}`);
  // The tail decays geometrically: P[|Y| = 2] / P[|Y| = 1] = p.
  const ones = values.filter((v) => Math.abs(v) === 1).length;
  const twos = values.filter((v) => Math.abs(v) === 2).length;
  assert.ok(Math.abs(twos / ones - p) < 0.05, `ratio ${twos / ones} against ${p}`);
});

test("a fractional scale (3/4) has the variance 2p/(1-p)^2 for p = exp(-4/3)", () => {
  const n = 20_000;
  const p = Math.exp(-4 / 3);
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push(Number(sampleDiscreteLaplace(rational(3n, 4n))));
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  const expected = (2 * p) / (1 - p) ** 2;
  assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(variance - expected) / expected < 0.07, `variance ${variance}, expected ${expected}`);
});

test("Bernoulli(exp(-gamma)) has the right frequency below and above 1", () => {
  for (const [num, den] of [[1n, 2n], [5n, 2n]] as const) {
    let hits = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) if (bernoulliExpMinus(num, den)) hits++;
    const expected = Math.exp(-Number(num) / Number(den));
    assert.ok(Math.abs(hits / n - expected) < 0.015, `gamma ${num}/${den}: ${hits / n} against ${expected}`);
  }
});

test("uniform integers cover the range without bias and refuse an empty range", () => {
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < 10_000; i++) counts[Number(uniformBelow(5n))]! += 1;
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `counts ${counts.join(",")}`);
  const big = 2n ** 130n + 7n;
  assert.ok(uniformBelow(big) < big);
  assert.throws(() => uniformBelow(0n), RangeError);
  assert.throws(() => sampleDiscreteLaplace(rational(0n)), RangeError);
});
