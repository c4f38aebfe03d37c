// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @dev The registry's public `enclaves` getter (EnclaveRegistry.sol), for the measurement and simulated flag
/// IEnclaveRegistry does not expose.
interface IEnclaveRecords {
    function enclaves(address enclave)
        external
        view
        returns (
            address operator,
            uint64 expiry,
            uint8 teeType,
            bool simulated,
            bool revoked,
            bytes32 hpkePublicKey,
            bytes32 measurement
        );
}

/// @title Cloister clean-room collaborations: partners agree on one query over their data, run it in enclaves.
/// @notice Lifecycle: createCollaboration (anyone; the terms are fixed for good) -> approve by every party (an
/// EIP-712 Approval naming the collaboration, its terms hash, query digest and policy digest; anyone may relay it)
/// -> recordRun by the compute party's enclave (an EIP-712 Run it signed, checked against the registry and the
/// compute party's enclave requirements), at most maxRuns times and within the DP budget, only while every
/// party's approval stands. A party may withdraw its approval at any time (itself, or by a signed Withdrawal that
/// anyone relays); the next run is then refused.
/// @dev Formats must match src/protocol/collaboration.ts. Only what approve and recordRun read is stored; the full
/// terms (SQL text, dataset and recipient descriptors, every party's requirements) are in CollaborationCreated
/// and bound by termsHash = keccak256(abi.encode(terms)).
contract Collaborations is EIP712 {
    /// @dev One party: the account that approves, and what its enclave must be. The chain checks the
    /// compute party's enclave at recordRun (operator, measurement); the other parties' requirements are for
    /// the enclaves, which check each other when they connect (manifestDigest/manifestRole: a role of a policy
    /// manifest, src/attestation/manifest/).
    struct Party {
        address account;
        /// @dev Zero: any operator.
        address operator;
        /// @dev The registry's measurement (EnclaveRegistry.sol: 32 bytes, or SHA-256 of a longer one); zero: none.
        bytes32 measurement;
        bytes32 manifestDigest;
        /// @dev keccak256 of the role's name in the manifest; zero with a zero manifestDigest.
        bytes32 manifestRole;
        /// @dev digestSet of the party's dataset descriptors (src/protocol/anchor.ts).
        bytes32 datasetsDigest;
    }

    /// @dev Mirrors `CollaborationTerms` in src/protocol/collaboration.ts.
    struct Terms {
        Party[] parties;
        /// @dev Index in `parties` of the party whose enclave runs the query and records the runs.
        uint8 computeParty;
        /// @dev SHA-256 of the domain tag, a zero byte and the SQL text (queryDigest in collaboration.ts).
        bytes32 queryDigest;
        /// @dev The SQL text (checked against queryDigest and emitted), or empty with queryCid set.
        string queryText;
        string queryCid;
        bytes32 policyDigest;
        uint32 maxRuns;
        /// @dev Total epsilon, fixed point with 6 decimals (1_000_000 = 1.0); zero: no differential privacy.
        uint64 dpBudget;
        /// @dev Where results go (a recipient descriptor, e.g. https://… or party:<name>).
        string recipient;
        /// @dev SHA-256 of the SubjectPublicKeyInfo the recipient's TLS endpoint must present.
        bytes32 recipientPin;
        bool allowSimulated;
    }

    /// @dev What the compute enclave signs for one run: JobAnchor-shaped (src/protocol/anchor.ts), with the
    /// counts and epsilon the contract must read in clear to enforce the policy's budget.
    struct RunReport {
        /// @dev 1 for the first run, then one more per recorded run.
        uint32 runId;
        address enclave;
        /// @dev digestSet of the parties' dataset digests as the enclave read them.
        bytes32 inputDigest;
        bytes32 resultDigest;
        bytes32 provenanceDigest;
        uint64 rowsDelivered;
        uint64 rowsSuppressed;
        /// @dev Fixed point with 6 decimals, as dpBudget.
        uint64 epsilonSpent;
    }

    /// @dev Slot 0 holds everything a run changes or checks first (31 bytes).
    struct Collaboration {
        uint32 maxRuns;
        uint32 runs;
        uint64 dpBudget;
        uint64 dpSpent;
        uint8 partyCount;
        bool allowSimulated;
        /// @dev Bit i set: party i's approval stands.
        uint32 approvals;
        address computeOperator;
        bytes32 computeMeasurement;
        bytes32 termsHash;
        bytes32 queryDigest;
        bytes32 policyDigest;
    }

    /// @dev index is the party's index + 1 (0: not a party); nonce counts its approvals and withdrawals.
    struct PartyState {
        uint8 index;
        uint64 nonce;
    }

    bytes32 public constant APPROVAL_TYPEHASH =
        keccak256("Approval(uint256 collaborationId,bytes32 termsHash,bytes32 queryDigest,bytes32 policyDigest,uint64 nonce)");
    bytes32 public constant WITHDRAWAL_TYPEHASH = keccak256("Withdrawal(uint256 collaborationId,uint64 nonce)");
    bytes32 public constant RUN_TYPEHASH = keccak256(
        "Run(uint256 collaborationId,uint32 runId,bytes32 termsHash,bytes32 inputDigest,bytes32 resultDigest,bytes32 provenanceDigest,uint64 rowsDelivered,uint64 rowsSuppressed,uint64 epsilonSpent)"
    );
    /// @dev Must equal DOMAIN.collabQuery in src/protocol/domains.ts.
    bytes public constant QUERY_TAG = "cloister/collab-query/v1";
    uint256 public constant MAX_PARTIES = 32;

    IEnclaveRegistry public immutable registry;

    mapping(uint256 collaborationId => Collaboration) public collaborations;
    mapping(uint256 collaborationId => mapping(address account => PartyState)) public parties;
    /// @dev The enclave of the node each party runs its side on (assignNode); zero: none yet.
    mapping(uint256 collaborationId => mapping(uint8 party => address enclave)) public partyNodes;
    /// @dev Bit i set: party i has assigned its node.
    mapping(uint256 collaborationId => uint32) public assignedNodes;
    /// @dev The result digest of each recorded run: a compute enclave releases a result only once it has proved,
    /// from this slot at a block its own endpoints chose, that this run was recorded with its result.
    mapping(uint256 collaborationId => mapping(uint32 runId => bytes32 resultDigest)) public runResults;

    error InvalidTerms(string reason);
    error QueryDigestMismatch(bytes32 queryDigest, bytes32 textDigest);
    error CollaborationExists(uint256 collaborationId);
    error UnknownCollaboration(uint256 collaborationId);
    error UnknownParty(uint256 collaborationId, address account);
    error AlreadyApproved(uint256 collaborationId, address party);
    /// @dev The approval or withdrawal was signed for another nonce: it was used, or the party approved or withdrew since.
    error StaleNonce(uint256 collaborationId, address party, uint64 nonce, uint64 expected);
    error InvalidApprovalSignature(uint256 collaborationId, address party, address recovered);
    error InvalidWithdrawalSignature(uint256 collaborationId, address party, address recovered);
    /// @dev `missing` has bit i set for each party i whose approval does not stand.
    error NotApprovedByAll(uint256 collaborationId, uint32 missing);
    error MaxRunsReached(uint256 collaborationId, uint32 maxRuns);
    error WrongRunId(uint256 collaborationId, uint32 runId, uint32 expected);
    error EpsilonWithoutBudget(uint256 collaborationId);
    error EpsilonMissing(uint256 collaborationId);
    error BudgetExceeded(uint256 collaborationId, uint64 spent, uint64 epsilon, uint64 budget);
    error InvalidRunSignature(uint256 collaborationId, address enclave, address recovered);
    error EnclaveNotActive(address enclave);
    error WrongEnclaveOperator(address enclave, address operator, address required);
    error WrongEnclaveMeasurement(address enclave, bytes32 measurement, bytes32 required);
    error SimulatedEnclaveNotAllowed(address enclave);
    /// @dev `missing` has bit i set for each party i that has not assigned its node.
    error NodesNotAssigned(uint256 collaborationId, uint32 missing);
    /// @dev Only the operator of the enclave party `party` assigned joins a run for it.
    error NotPartyNode(uint256 collaborationId, uint8 party, address sender);
    /// @dev A refusal code is 1 to 32 characters of A-Z, 0-9 and _, left-aligned and zero-padded: a typed code, no data.
    error InvalidRefusalCode(bytes32 code);

    event CollaborationCreated(uint256 indexed collaborationId, address indexed creator, bytes32 termsHash, Terms terms);
    event Approved(uint256 indexed collaborationId, address indexed party, uint64 nonce, address relayer);
    /// @notice Every party's approval stands (emitted by the approval that completes the set).
    event FullyApproved(uint256 indexed collaborationId);
    /// @param wasApproved False when the party only cancelled a signed approval not yet relayed (nonce bumped).
    event ApprovalWithdrawn(uint256 indexed collaborationId, address indexed party, uint64 nonce, bool wasApproved);
    event RunRecorded(
        uint256 indexed collaborationId,
        uint32 indexed runId,
        address indexed enclave,
        bytes32 inputDigest,
        bytes32 resultDigest,
        bytes32 provenanceDigest,
        uint64 rowsDelivered,
        uint64 rowsSuppressed,
        uint64 epsilonSpent,
        uint64 dpSpent
    );

    /// @param kitCid IPFS CID of the party's run kit for that node: its dataset descriptors sealed to the enclave,
    /// the policy text, the manifest (src/protocol/collab-kit.ts).
    event PartyNodeAssigned(uint256 indexed collaborationId, uint8 indexed party, address indexed enclave, string kitCid);
    /// @notice A party asks every party's node to run `runId` (the next run); the nodes follow this event.
    event RunRequested(uint256 indexed collaborationId, uint32 indexed runId, address indexed requester);
    /// @param peerCid IPFS CID of the node's peer record for this run: its enclave's keys and fresh evidence and,
    /// for the compute party, the address its enclave listens on.
    event RunJoined(uint256 indexed collaborationId, uint32 indexed runId, uint8 indexed party, address enclave, string peerCid);
    /// @notice Party `party`'s node refused run `runId`; `code` is its enclave's typed reason (e.g. ROW_LEVEL_OUTPUT),
    /// ASCII, zero-padded. The requester fails at once instead of at its timeout.
    event RunRefused(uint256 indexed collaborationId, uint32 indexed runId, uint8 indexed party, address enclave, bytes32 code);

    constructor(IEnclaveRegistry registry_) EIP712("Cloister Collaborations", "1") {
        registry = registry_;
    }

    /// @notice Creates a collaboration with fixed terms. The id is derived from the caller and a salt
    /// (keccak256(abi.encode(chainid, this, creator, salt))), so it is known before the transaction is mined.
    function createCollaboration(Terms calldata terms, bytes32 salt) external returns (uint256 collaborationId) {
        collaborationId = uint256(keccak256(abi.encode(block.chainid, address(this), msg.sender, salt)));
        Collaboration storage c = collaborations[collaborationId];
        if (c.partyCount != 0) revert CollaborationExists(collaborationId);
        _checkTerms(terms);

        uint256 n = terms.parties.length;
        for (uint256 i = 0; i < n; ++i) {
            PartyState storage p = parties[collaborationId][terms.parties[i].account];
            if (p.index != 0) revert InvalidTerms("a party's account appears twice");
            p.index = uint8(i + 1);
        }
        Party calldata compute = terms.parties[terms.computeParty];
        bytes32 termsHash = keccak256(abi.encode(terms));
        c.maxRuns = terms.maxRuns;
        c.dpBudget = terms.dpBudget;
        c.partyCount = uint8(n);
        c.allowSimulated = terms.allowSimulated;
        c.computeOperator = compute.operator;
        c.computeMeasurement = compute.measurement;
        c.termsHash = termsHash;
        c.queryDigest = terms.queryDigest;
        c.policyDigest = terms.policyDigest;
        emit CollaborationCreated(collaborationId, msg.sender, termsHash, terms);
    }

    /// @notice Records `party`'s approval, signed by it (EIP-712 Approval with `nonce`, its current nonce).
    /// Anyone may send it.
    function approve(uint256 collaborationId, address party, uint64 nonce, bytes calldata signature) external {
        Collaboration storage c = _collaboration(collaborationId);
        PartyState storage p = _party(collaborationId, party);
        uint32 bit = uint32(1) << (p.index - 1);
        if (c.approvals & bit != 0) revert AlreadyApproved(collaborationId, party);
        if (nonce != p.nonce) revert StaleNonce(collaborationId, party, nonce, p.nonce);
        address recovered = ECDSA.recover(approvalDigest(collaborationId, nonce), signature);
        if (recovered != party) revert InvalidApprovalSignature(collaborationId, party, recovered);

        p.nonce = nonce + 1;
        uint32 approvals = c.approvals | bit;
        c.approvals = approvals;
        emit Approved(collaborationId, party, nonce, msg.sender);
        if (approvals == _allParties(c.partyCount)) emit FullyApproved(collaborationId);
    }

    /// @notice The caller, a party, withdraws its approval; runs are refused until it approves again. It also
    /// bumps the caller's nonce, so an approval it signed and nobody relayed yet can no longer be used.
    function withdrawApproval(uint256 collaborationId) external {
        Collaboration storage c = _collaboration(collaborationId);
        _withdraw(c, collaborationId, msg.sender, _party(collaborationId, msg.sender));
    }

    /// @notice `withdrawApproval` for `party`, signed by it (EIP-712 Withdrawal with its current nonce), so a party
    /// that approves through a relayer can withdraw through one too. Anyone may send it.
    function withdrawApprovalBySig(uint256 collaborationId, address party, uint64 nonce, bytes calldata signature) external {
        Collaboration storage c = _collaboration(collaborationId);
        PartyState storage p = _party(collaborationId, party);
        if (nonce != p.nonce) revert StaleNonce(collaborationId, party, nonce, p.nonce);
        address recovered = ECDSA.recover(withdrawalDigest(collaborationId, nonce), signature);
        if (recovered != party) revert InvalidWithdrawalSignature(collaborationId, party, recovered);
        _withdraw(c, collaborationId, party, p);
    }

    /// @notice Records run `report.runId`, signed by `report.enclave`: an active enclave of the registry that
    /// meets the compute party's requirements. Anyone may send it (the enclave's host, as a rule).
    function recordRun(uint256 collaborationId, RunReport calldata report, bytes calldata signature) external {
        Collaboration storage c = _collaboration(collaborationId);
        uint32 approvals = c.approvals;
        uint32 all = _allParties(c.partyCount);
        if (approvals != all) revert NotApprovedByAll(collaborationId, all & ~approvals);
        uint32 runs = c.runs;
        if (runs >= c.maxRuns) revert MaxRunsReached(collaborationId, c.maxRuns);
        if (report.runId != runs + 1) revert WrongRunId(collaborationId, report.runId, runs + 1);
        // Summed in 256 bits: an epsilon near 2^64 is a BudgetExceeded, not an overflow panic.
        uint256 dpSpent = uint256(c.dpSpent) + report.epsilonSpent;
        if (c.dpBudget == 0) {
            if (report.epsilonSpent != 0) revert EpsilonWithoutBudget(collaborationId);
        } else {
            if (report.epsilonSpent == 0) revert EpsilonMissing(collaborationId);
            if (dpSpent > c.dpBudget) revert BudgetExceeded(collaborationId, c.dpSpent, report.epsilonSpent, c.dpBudget);
        }
        address recovered = ECDSA.recover(runDigest(collaborationId, report), signature);
        if (recovered != report.enclave) revert InvalidRunSignature(collaborationId, report.enclave, recovered);
        _checkEnclave(c, report.enclave);

        c.runs = runs + 1;
        runResults[collaborationId][report.runId] = report.resultDigest;
        c.dpSpent = uint64(dpSpent);
        _emitRun(collaborationId, report, uint64(dpSpent));
    }

    /// @notice The caller, a party, names the enclave of the node that runs its side of every run, and the
    /// run kit that node reads (ciphertext for that enclave, and public text). A later call replaces it.
    function assignNode(uint256 collaborationId, address enclave, string calldata kitCid) external {
        _collaboration(collaborationId);
        uint8 party = _party(collaborationId, msg.sender).index - 1;
        if (registry.activeOperator(enclave) == address(0)) revert EnclaveNotActive(enclave);
        partyNodes[collaborationId][party] = enclave;
        assignedNodes[collaborationId] |= uint32(1) << party;
        emit PartyNodeAssigned(collaborationId, party, enclave, kitCid);
    }

    /// @notice The caller, a party, requests the next run. Refused unless it could be recorded now (every
    /// approval standing, runs left) and every party has a node; the nodes then run it and recordRun records it.
    function requestRun(uint256 collaborationId) external returns (uint32 runId) {
        Collaboration storage c = _collaboration(collaborationId);
        _party(collaborationId, msg.sender);
        uint32 all = _allParties(c.partyCount);
        if (c.approvals != all) revert NotApprovedByAll(collaborationId, all & ~c.approvals);
        if (c.runs >= c.maxRuns) revert MaxRunsReached(collaborationId, c.maxRuns);
        uint32 assigned = assignedNodes[collaborationId];
        if (assigned != all) revert NodesNotAssigned(collaborationId, all & ~assigned);
        runId = c.runs + 1;
        emit RunRequested(collaborationId, runId, msg.sender);
    }

    /// @notice The operator of party `party`'s node publishes its peer record for the pending run `runId`.
    function joinRun(uint256 collaborationId, uint32 runId, uint8 party, string calldata peerCid) external {
        emit RunJoined(collaborationId, runId, party, _pendingRunNode(collaborationId, runId, party), peerCid);
    }

    /// @notice The operator of party `party`'s node reports that its enclave refused the pending run `runId`, with
    /// the enclave's typed refusal code only (no message: a code carries no row value, SQL or credential).
    function reportRefusal(uint256 collaborationId, uint32 runId, uint8 party, bytes32 code) external {
        address enclave = _pendingRunNode(collaborationId, runId, party);
        if (!_isRefusalCode(code)) revert InvalidRefusalCode(code);
        emit RunRefused(collaborationId, runId, party, enclave, code);
    }

    /// @notice The EIP-712 digest a party signs to approve `collaborationId` at `nonce`.
    function approvalDigest(uint256 collaborationId, uint64 nonce) public view returns (bytes32) {
        Collaboration storage c = collaborations[collaborationId];
        return _hashTypedDataV4(
            keccak256(abi.encode(APPROVAL_TYPEHASH, collaborationId, c.termsHash, c.queryDigest, c.policyDigest, nonce))
        );
    }

    /// @notice The EIP-712 digest a party signs to withdraw from `collaborationId` at `nonce`.
    function withdrawalDigest(uint256 collaborationId, uint64 nonce) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(WITHDRAWAL_TYPEHASH, collaborationId, nonce)));
    }

    /// @notice The EIP-712 digest the compute enclave signs for `report`.
    function runDigest(uint256 collaborationId, RunReport calldata report) public view returns (bytes32) {
        // Two static encodings concatenated equal one encoding of all the fields (one would be too deep a stack).
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(RUN_TYPEHASH, collaborationId, report.runId, collaborations[collaborationId].termsHash, report.inputDigest),
                abi.encode(report.resultDigest, report.provenanceDigest, report.rowsDelivered, report.rowsSuppressed, report.epsilonSpent)
            )
        );
        return _hashTypedDataV4(structHash);
    }

    function _withdraw(Collaboration storage c, uint256 collaborationId, address party, PartyState storage p) private {
        uint32 bit = uint32(1) << (p.index - 1);
        bool wasApproved = c.approvals & bit != 0;
        uint64 nonce = p.nonce + 1;
        p.nonce = nonce;
        if (wasApproved) c.approvals &= ~bit;
        emit ApprovalWithdrawn(collaborationId, party, nonce, wasApproved);
    }

    function _checkTerms(Terms calldata terms) private pure {
        uint256 n = terms.parties.length;
        if (n < 2) revert InvalidTerms("a collaboration needs at least two parties");
        if (n > MAX_PARTIES) revert InvalidTerms("at most 32 parties");
        if (terms.computeParty >= n) revert InvalidTerms("computeParty is not a party's index");
        for (uint256 i = 0; i < n; ++i) {
            Party calldata p = terms.parties[i];
            if (p.account == address(0)) revert InvalidTerms("a party's account is the zero address");
            if (p.measurement == bytes32(0) && p.manifestDigest == bytes32(0)) {
                revert InvalidTerms("a party names neither a measurement nor a manifest");
            }
            if ((p.manifestDigest == bytes32(0)) != (p.manifestRole == bytes32(0))) {
                revert InvalidTerms("a manifest needs a role and a role a manifest");
            }
        }
        if (terms.parties[terms.computeParty].measurement == bytes32(0)) {
            revert InvalidTerms("the compute party must name a measurement (the chain checks it)");
        }
        if (terms.queryDigest == bytes32(0)) revert InvalidTerms("queryDigest is zero");
        if (bytes(terms.queryText).length != 0) {
            bytes32 textDigest = sha256(abi.encodePacked(QUERY_TAG, bytes1(0), terms.queryText));
            if (textDigest != terms.queryDigest) revert QueryDigestMismatch(terms.queryDigest, textDigest);
        } else if (bytes(terms.queryCid).length == 0) {
            revert InvalidTerms("neither the query text nor its CID is given");
        }
        if (terms.policyDigest == bytes32(0)) revert InvalidTerms("policyDigest is zero");
        if (terms.maxRuns == 0) revert InvalidTerms("maxRuns is zero");
        if (bytes(terms.recipient).length == 0) revert InvalidTerms("no recipient");
        if (terms.recipientPin == bytes32(0)) revert InvalidTerms("recipientPin is zero");
    }

    /// @dev Reads only (staticcalls to the registry): no state of this contract changes before or after.
    function _checkEnclave(Collaboration storage c, address enclave) private view {
        address operator = registry.activeOperator(enclave);
        if (operator == address(0)) revert EnclaveNotActive(enclave);
        if (c.computeOperator != address(0) && operator != c.computeOperator) {
            revert WrongEnclaveOperator(enclave, operator, c.computeOperator);
        }
        (,,, bool simulated,,, bytes32 measurement) = IEnclaveRecords(address(registry)).enclaves(enclave);
        if (measurement != c.computeMeasurement) revert WrongEnclaveMeasurement(enclave, measurement, c.computeMeasurement);
        if (simulated && !c.allowSimulated) revert SimulatedEnclaveNotAllowed(enclave);
    }

    /// @dev Its own frame: recordRun's locals and the event's ten fields do not fit one stack.
    function _emitRun(uint256 collaborationId, RunReport calldata report, uint64 dpSpent) private {
        emit RunRecorded(
            collaborationId,
            report.runId,
            report.enclave,
            report.inputDigest,
            report.resultDigest,
            report.provenanceDigest,
            report.rowsDelivered,
            report.rowsSuppressed,
            report.epsilonSpent,
            dpSpent
        );
    }

    /// @dev The enclave party `party` assigned, when the caller is its operator and `runId` the pending run.
    function _pendingRunNode(uint256 collaborationId, uint32 runId, uint8 party) private view returns (address enclave) {
        Collaboration storage c = _collaboration(collaborationId);
        if (runId != c.runs + 1) revert WrongRunId(collaborationId, runId, c.runs + 1);
        enclave = partyNodes[collaborationId][party];
        if (enclave == address(0) || registry.activeOperator(enclave) != msg.sender) revert NotPartyNode(collaborationId, party, msg.sender);
    }

    /// @dev 1 to 32 of A-Z, 0-9, _ from the left, then only zero bytes.
    function _isRefusalCode(bytes32 code) private pure returns (bool) {
        uint256 i = 0;
        for (; i < 32; ++i) {
            bytes1 b = code[i];
            if (b == 0) break;
            if (!((b >= "A" && b <= "Z") || (b >= "0" && b <= "9") || b == "_")) return false;
        }
        if (i == 0) return false;
        for (; i < 32; ++i) if (code[i] != 0) return false;
        return true;
    }

    function _collaboration(uint256 collaborationId) private view returns (Collaboration storage c) {
        c = collaborations[collaborationId];
        if (c.partyCount == 0) revert UnknownCollaboration(collaborationId);
    }

    function _party(uint256 collaborationId, address account) private view returns (PartyState storage p) {
        p = parties[collaborationId][account];
        if (p.index == 0) revert UnknownParty(collaborationId, account);
    }

    function _allParties(uint8 count) private pure returns (uint32) {
        return uint32((uint256(1) << count) - 1);
    }
}
