// Payroll statistics computed inside an enclave: the employer's raw payroll
// (names and salaries) never leaves the enclave; only the aggregates do.
export default function (input) {
  const rows = JSON.parse(new TextDecoder().decode(input));
  const salaries = rows.map((r) => r.salary).sort((a, b) => a - b);
  const n = salaries.length;
  const mean = salaries.reduce((s, x) => s + x, 0) / n;
  const median = n % 2 ? salaries[(n - 1) / 2] : (salaries[n / 2 - 1] + salaries[n / 2]) / 2;
  const byTeam = {};
  for (const r of rows) byTeam[r.team] = (byTeam[r.team] ?? 0) + 1;
  return JSON.stringify({ employees: n, meanSalary: Math.round(mean), medianSalary: median, headcountByTeam: byTeam });
}
