/** Usage texts, kept apart from the commands so `cloister help` loads nothing heavy. */
export const attestUsage = `Usage:
  cloister attest verify <quote-file> [--collateral <json> | --pccs <url>] [--now <unix-seconds>] [--policy <json>] [--json]
  cloister attest verify <report-file> --vcek <der> --chain <pem> [--now <unix-seconds>] [--policy <json>] [--json]
  cloister attest verify <evidence.json> [--now <unix-seconds>] [--policy <json>] [--json]
  cloister attest policy init [<file>] [--force]   write a commented starter policy (default: cloister-policy.jsonc)
  cloister attest policy schema                    print the policy file's JSON Schema

Options of attest verify:
  --collateral <json>     Intel collateral file (tcb_info, qe_identity, CRLs and chains)
  --pccs <url>            fetch collateral from a PCCS or Intel PCS v4 (cached in --cache-dir, default ~/.cache/cloister/collateral)
  --vcek <der> --chain <pem>  AMD VCEK certificate and the ASK/ARK chain of an SEV-SNP report
  --now <unix-seconds>    evaluation time (default: now)
  --policy <json>         attestation policy file (see 'attest policy init')
  --report-data <hex>     the 64-byte report_data the evidence must carry (your nonce binding)
  --json                  print one JSON object instead of text

Exit status: 0 authentic and accepted by the policy, 1 not, 2 unusable arguments or unreadable files.
Without --policy the strict production policy applies (Intel root only, UpToDate only, no debug, no simulation).`;

export const taskUsage = `Usage:
  cloister task run <program.js> --input <file> [--data-dir <dir>] [--timeout-ms <ms>] [--json] [--quiet]

  Runs <program.js> (an ES module whose default export takes the input bytes and returns bytes or a string)
  as a confidential task on an embedded network (in-process chain, embedded IPFS, one node on the SIMULATED TEE)
  and prints the decrypted output. With --data-dir the network's state lives and persists there.`;

export const verifyUsage = `Usage:
  cloister verify <provenance.json> [--evidence <file>] [--output <file>] [--policy <file> | --sim-pki <dir>] [--json]
  cloister verify <task-id> --data-dir <dir> [--policy <file>] [--json]

  Checks an execution's provenance record: the DSSE signature by the enclave it names, that enclave's
  attestation under the policy (default: the strict production policy; with --sim-pki or a --data-dir,
  that network's simulated root and this checkout's enclave measurement), the output digest, and with
  --data-dir the on-chain anchor (the task's completion names the same enclave and digests).
  Exit status: 0 verified, 1 not, 2 unusable arguments.`;
