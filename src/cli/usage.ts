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
  --measurement <hex>     accept this MRENCLAVE / MRTD / SNP measurement (repeatable; added to the policy's)
  --mrsigner <hex>        accept SGX enclaves of this MRSIGNER (repeatable; added to the policy's)
  --any-code              accept ANY code (no measurement or signer checked): only to inspect evidence
  --json                  print one JSON object instead of text

Exit status: 0 authentic and accepted by the policy, 1 not, 2 unusable arguments or unreadable files.
Without --policy the strict production policy applies (Intel root only, Cloister's released enclave measurements
only (releases/enclave-measurements.json; none yet), UpToDate only, no debug, no simulation). Evidence of code that
no policy pins is authentic at best, never accepted: pin it with --measurement / --mrsigner or a policy file.`;

export const networkOptionsUsage = `Against a running network (cloister devnet up, or any Ethereum JSON-RPC endpoint and Kubo node):
  --rpc <url> --ipfs <url>   the chain's JSON-RPC URL and the IPFS node's Kubo RPC API URL
  --ws <url>                 the chain's JSON-RPC over WebSocket (a devnet's is ws://127.0.0.1:<port>): every chain
                             request goes over it, and the result is picked up on the new block (eth_subscribe
                             "newHeads") instead of by polling
  --cas <url> | --deployment <file>
                             where the contract addresses come from: the attestation service (GET /deployment)
                             or a deployment file (a devnet writes <dir>/deployment.json)
  --sim-pki <dir> | --policy <file>
                             the attestation policy enclaves are verified against: a devnet's simulated root
                             (<dir>/sim-tee) with this checkout's enclave measurement, or a policy file;
                             default the strict production policy
  --key <hex>                the requester's private key (better: env CLOISTER_PRIVATE_KEY); on a local devnet
                             (chain 31337 on 127.0.0.1) the well-known development requester key is the default`;

export const taskUsage = `Usage:
  cloister task run <program.js> --input <file> [--data-dir <dir>] [--timeout-ms <ms>] [--json] [--quiet]
  cloister task run <program.js> --input <file> --rpc <url> --ipfs <url> (--cas <url> | --deployment <file>)
                    [--ws <url>] [--sim-pki <dir> | --policy <file>] [--key <hex>] [--timeout-ms <ms>] [--json] [--quiet]

  Runs <program.js> (an ES module whose default export takes the input bytes and returns bytes or a string)
  as a confidential task on an embedded network (in-process chain, embedded IPFS, one node on the SIMULATED TEE)
  and prints the decrypted output. With --data-dir the network's state lives and persists there.

${networkOptionsUsage}
  e.g. cloister task run examples/echo.js --input in.txt --rpc http://127.0.0.1:8545 --ws ws://127.0.0.1:8545 \\
         --ipfs http://127.0.0.1:8546 --cas http://127.0.0.1:8547 --sim-pki .cloister/devnet/sim-tee`;

export const verifyUsage = `Usage:
  cloister verify <provenance.json> [--evidence <file>] [--output <file>] [--operator <address>] [--policy <file> | --sim-pki <dir>] [--json]
  cloister verify <task-id> --data-dir <dir> [--policy <file>] [--json]

  Checks an execution's provenance record: the DSSE signature by the enclave it names, that enclave's
  attestation under the policy (default: the strict production policy; with --sim-pki or a --data-dir,
  that network's simulated root and this checkout's enclave measurement; its report_data must commit to
  the enclave's keys and its operator: --operator, or with --data-dir the operator that completed the task),
  the output digest, and with --data-dir the on-chain anchor (the task's completion names the same enclave
  and digests).
  Exit status: 0 verified, 1 not, 2 unusable arguments.`;

export const devnetUsage = `Usage:
  cloister devnet up [--nodes <n>] [--dir <dir>] [--port <port>] [--json] [limits]

  Runs a local network as separate processes: the chain (JSON-RPC over HTTP and WebSocket on 127.0.0.1:<port>), one IPFS node
  (Kubo RPC API on <port>+1), the attestation service (HTTP on <port>+2, GET /deployment gives the
  contract addresses) and <n> node daemons (default 2), each with its enclave process on the SIMULATED TEE
  and GET /healthz and /metrics on <port>+3+i.
  Prints the endpoints and keeps running; Ctrl-C (or SIGTERM) stops every process. State lives in <dir>
  (default .cloister/devnet) and a second 'devnet up --dir <dir>' resumes the same chain, IPFS blocks,
  contracts and enclave identities. Default port 8545; 0 picks free ports. With --json the endpoints are
  printed as one JSON object. Everything binds to 127.0.0.1; the accounts are well-known development keys.

  Limits (raise them only for clients you trust; docs/threat-model.md, Public endpoints):
  --rpc-max-batch <n>                       requests in one JSON-RPC batch (default 1000)
  --rpc-max-response-bytes <n>              one reply, or a batch's replies together (default 33554432, 32 MiB)
  --ipfs-max-upload-bytes <n>               one add request's body (default 268435456, 256 MiB)
  --ipfs-max-uploads-in-flight-bytes <n>    the bodies of all add requests at once (default 536870912, 512 MiB)`;
