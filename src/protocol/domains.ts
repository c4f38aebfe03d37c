/**
 * Domain tags: every hash, HPKE info or AEAD AAD Cloister computes off chain
 * starts with one of these, so a value made for one purpose can never be
 * accepted for another.
 */
export const DOMAIN = {
  /** report_data[0..32] = SHA-256(tag || abi(signer, HPKE key, SHA-256(provenance SPKI), SHA-256(TLS SPKI), operator)). */
  enclaveKeys: "cloister/enclave-keys/v3",
  /** HPKE info when wrapping a task's data key to an enclave (binds the program digest and result key). */
  taskKey: "cloister/task-key/v2",
  /** AEAD AAD of the task input stream. */
  taskInput: "cloister/task-input/v1",
  /** HPKE info when encrypting a task result to the requester. */
  taskResult: "cloister/task-result/v1",
  /** A set of named digests as one (the inputs or outputs of a job anchor, src/protocol/anchor.ts). */
  digestSet: "cloister/digest-set/v1",
  /** Digest of a collaboration's SQL text: SHA-256(tag || 0x00 || UTF-8 text), checked by contracts/Collaborations.sol (QUERY_TAG). */
  collabQuery: "cloister/collab-query/v1",
  /** Digest of a collaboration's output policy and of a party's (credential-free) dataset descriptor (src/protocol/collab-run.ts). */
  collabPolicy: "cloister/collab-policy/v1",
  collabDataset: "cloister/collab-dataset/v1",
  /** Digest of the chain endpoints a party trusts (an entry of its datasetsDigest when it names them). */
  collabChainView: "cloister/collab-chain-view/v1",
  /** HPKE info of a party's sealed datasets ({datasets, chainView?}, descriptors with credentials) sealed to its own enclave. */
  collabDatasets: "cloister/collab-datasets/v2",
  /** HPKE info of a recipient table's url (credentials included) sealed to the compute enclave. */
  collabDelivery: "cloister/collab-delivery/v1",
  /** HPKE info / AAD of a run's result sealed by the compute enclave to the recipient. */
  collabResult: "cloister/collab-result/v1",
  /** Digest of the statement or program an owner grant allows: SHA-256(tag || 0x00 || bytes) (src/protocol/grants.ts). */
  grantStatement: "cloister/grant-statement/v1",
  /** HPKE info of a granted dataset (connection and credentials) sealed by the owner to one enclave of the operator (src/protocol/operate.ts). */
  grantDataset: "cloister/grant-dataset/v1",
  /** The run id of a grant's n-th use: keccak256(tag || 0x00 || abi(chainId, grants, grantId, n)) (src/protocol/operate.ts). */
  grantRun: "cloister/grant-run/v1",
  /** HPKE info of a granted read's rows, sealed to the operator's result key (src/protocol/operate.ts). */
  grantRead: "cloister/grant-read/v1",
  /** Sealing key derivation inside the enclave. */
  sealing: "cloister/sealing/v1",
  /** Digest of a policy manifest: SHA-256(tag || 0x00 || canonical JSON of the normalized manifest). */
  manifest: "cloister/manifest/v1",
  /** Commitment to one vault share (src/protocol/vault-shares.ts): binds token, version, slot, salt and share. */
  vaultShare: "cloister/vault-share/v1",
  /** Commitment to a vault secret (salted; the salt is shared with the secret, so only k shares reveal it). */
  vaultSecret: "cloister/vault-secret/v1",
  /** The one bytes32 a vault contract stores per token and version: the root over the share set. */
  vaultRoot: "cloister/vault-root/v1",
  /** HPKE info of the context under which the owner seals shares to a slot enclave (each share's address is its AAD). */
  vaultStore: "cloister/vault-store/v2",
  /** HPKE info of the context under which one attested enclave sends shares to another (a peer at the same slot, or a refresh dealer). */
  vaultTransfer: "cloister/vault-transfer/v2",
  /** HPKE info of a share returned to the owner for one signed retrieval request. */
  vaultRetrieve: "cloister/vault-retrieve/v1",
} as const;
