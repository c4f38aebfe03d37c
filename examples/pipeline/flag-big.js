// A pipeline transform program: rows in (a JSON array of objects), rows out.
// Runs in the task sandbox inside the enclave, no network, no file system.
export default function (input) {
  const rows = JSON.parse(new TextDecoder().decode(input));
  return JSON.stringify(rows.map((r) => ({ id: r.id, customer: r.customer, big: Number(r.amount) >= 10 })));
}
