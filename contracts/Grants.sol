// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @title Cloister owner grants: a data owner lets one operator do one kind of direct manipulation of its data.
/// @notice A grant names a dataset, the operations allowed, the exact statement (or program) by its digest, a
/// purpose, a validity window and a number of uses, and the operator whose enclaves may use it. The owner creates
/// it directly or signs it (EIP-712 Grant; anyone relays it), and may revoke it at any time. Each use is recorded
/// by consumeUse with the signature of an enclave active in the registry and run by the grant's operator: at most
/// maxUses times, within [notBefore, expiry), never after revocation, once per run id.
/// @dev Formats must match src/protocol/grants.ts. The grant's scope (dataset, operations, statement) is for the
/// enclave, which checks a manipulation against it before running it; the contract enforces who, when and how
/// often. Grants are never changed after creation, except `revoked` and `uses`.
contract Grants is EIP712 {
    /// @dev Mirrors `GrantTerms` in src/protocol/grants.ts.
    struct GrantTerms {
        address owner;
        address operator;
        /// @dev The dataset's digest, or keccak256 of its name (src/protocol/grants.ts datasetId).
        bytes32 dataset;
        /// @dev Bitmask: READ 1, INSERT 2, UPDATE 4, DELETE 8.
        uint8 operations;
        /// @dev Digest of the exact statement or program allowed (statementDigest in grants.ts).
        bytes32 statementDigest;
        /// @dev Why: emitted, not stored.
        string purpose;
        /// @dev Unix seconds; the grant is usable from notBefore (inclusive) to expiry (exclusive).
        uint40 notBefore;
        uint40 expiry;
        uint32 maxUses;
    }

    /// @dev Slot 0 is what consumeUse checks first, slot 1 what it checks and changes.
    struct Grant {
        address owner;
        uint40 notBefore;
        uint40 expiry;
        uint8 operations;
        bool revoked;
        address operator;
        uint32 maxUses;
        uint32 uses;
        bytes32 dataset;
        bytes32 statementDigest;
    }

    uint8 public constant ALL_OPERATIONS = 15;
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(address owner,address operator,bytes32 dataset,uint8 operations,bytes32 statementDigest,string purpose,uint40 notBefore,uint40 expiry,uint32 maxUses,bytes32 salt)"
    );
    bytes32 public constant USE_TYPEHASH = keccak256("Use(uint256 grantId,bytes32 runId,bytes32 provenanceDigest)");

    IEnclaveRegistry public immutable registry;

    mapping(uint256 grantId => Grant) public grants;
    mapping(uint256 grantId => mapping(bytes32 runId => bool)) public runRecorded;

    error InvalidGrant(string reason);
    error NotTheOwner(address caller, address owner);
    error GrantExists(uint256 grantId);
    error UnknownGrant(uint256 grantId);
    error InvalidGrantSignature(address owner, address recovered);
    error NotGrantOwner(uint256 grantId, address caller, address owner);
    error GrantIsRevoked(uint256 grantId);
    error GrantNotYetValid(uint256 grantId, uint40 notBefore, uint256 now_);
    error GrantExpired(uint256 grantId, uint40 expiry, uint256 now_);
    error GrantUsedUp(uint256 grantId, uint32 maxUses);
    error RunAlreadyRecorded(uint256 grantId, bytes32 runId);
    error ProvenanceMissing(uint256 grantId, bytes32 runId);
    error EnclaveNotActive(address enclave);
    error WrongEnclaveOperator(address enclave, address operator, address required);

    event GrantCreated(uint256 indexed grantId, address indexed owner, address indexed operator, GrantTerms terms, bytes32 salt, address relayer);
    /// @param created False when the owner voided a signed grant nobody had relayed yet (cancelSignedGrant).
    event GrantRevoked(uint256 indexed grantId, address indexed owner, uint32 uses, bool created);
    event GrantUsed(uint256 indexed grantId, bytes32 indexed runId, address indexed enclave, bytes32 provenanceDigest, uint32 use);

    constructor(IEnclaveRegistry registry_) EIP712("Cloister Grants", "1") {
        registry = registry_;
    }

    /// @notice The caller, `terms.owner`, creates a grant. Its id is grantId(chainid, this, owner, salt).
    function createGrant(GrantTerms calldata terms, bytes32 salt) external returns (uint256 grantId) {
        if (terms.owner != msg.sender) revert NotTheOwner(msg.sender, terms.owner);
        grantId = _create(terms, salt);
    }

    /// @notice Creates a grant `terms.owner` signed (EIP-712 Grant over the terms and salt). Anyone may send it;
    /// the id fixes it to one creation, so a signature cannot be replayed.
    function createGrantBySig(GrantTerms calldata terms, bytes32 salt, bytes calldata signature) external returns (uint256 grantId) {
        address recovered = ECDSA.recover(grantDigest(terms, salt), signature);
        if (recovered != terms.owner) revert InvalidGrantSignature(terms.owner, recovered);
        grantId = _create(terms, salt);
    }

    /// @notice The owner revokes a grant; every later use is refused.
    function revokeGrant(uint256 grantId) external {
        Grant storage g = grants[grantId];
        if (g.owner == address(0)) revert UnknownGrant(grantId);
        if (g.owner != msg.sender) revert NotGrantOwner(grantId, msg.sender, g.owner);
        if (g.revoked) revert GrantIsRevoked(grantId);
        g.revoked = true;
        emit GrantRevoked(grantId, msg.sender, g.uses, true);
    }

    /// @notice The caller voids a grant it signed with `salt` that nobody has relayed yet: its id is taken, revoked.
    function cancelSignedGrant(bytes32 salt) external returns (uint256 grantId) {
        grantId = grantIdOf(msg.sender, salt);
        Grant storage g = grants[grantId];
        if (g.owner != address(0)) revert GrantExists(grantId);
        g.owner = msg.sender;
        g.revoked = true;
        emit GrantRevoked(grantId, msg.sender, 0, false);
    }

    /// @notice Records one use of `grantId` by run `runId`, signed (EIP-712 Use) by an enclave active in the
    /// registry whose operator is the grant's. Anyone may send it (the enclave's host, as a rule).
    function consumeUse(uint256 grantId, bytes32 runId, bytes32 provenanceDigest, bytes calldata signature) external {
        Grant storage g = grants[grantId];
        if (g.owner == address(0) || g.maxUses == 0) revert UnknownGrant(grantId);
        if (g.revoked) revert GrantIsRevoked(grantId);
        if (block.timestamp < g.notBefore) revert GrantNotYetValid(grantId, g.notBefore, block.timestamp);
        if (block.timestamp >= g.expiry) revert GrantExpired(grantId, g.expiry, block.timestamp);
        uint32 uses = g.uses;
        if (uses >= g.maxUses) revert GrantUsedUp(grantId, g.maxUses);
        if (runRecorded[grantId][runId]) revert RunAlreadyRecorded(grantId, runId);
        if (provenanceDigest == bytes32(0)) revert ProvenanceMissing(grantId, runId);
        address enclave = ECDSA.recover(useDigest(grantId, runId, provenanceDigest), signature);
        address operator = registry.activeOperator(enclave);
        if (operator == address(0)) revert EnclaveNotActive(enclave);
        if (operator != g.operator) revert WrongEnclaveOperator(enclave, operator, g.operator);

        g.uses = uses + 1;
        runRecorded[grantId][runId] = true;
        emit GrantUsed(grantId, runId, enclave, provenanceDigest, uses + 1);
    }

    /// @notice The id a grant created by `owner` with `salt` gets on this chain and contract.
    function grantIdOf(address owner, bytes32 salt) public view returns (uint256) {
        return uint256(keccak256(abi.encode(block.chainid, address(this), owner, salt)));
    }

    /// @notice The EIP-712 digest the owner signs to create a grant of `terms` with `salt`.
    function grantDigest(GrantTerms calldata terms, bytes32 salt) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(GRANT_TYPEHASH, terms.owner, terms.operator, terms.dataset, terms.operations, terms.statementDigest),
                abi.encode(keccak256(bytes(terms.purpose)), terms.notBefore, terms.expiry, terms.maxUses, salt)
            )
        );
        return _hashTypedDataV4(structHash);
    }

    /// @notice The EIP-712 digest an enclave signs to record run `runId` as a use of `grantId`.
    function useDigest(uint256 grantId, bytes32 runId, bytes32 provenanceDigest) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(USE_TYPEHASH, grantId, runId, provenanceDigest)));
    }

    function _create(GrantTerms calldata terms, bytes32 salt) private returns (uint256 grantId) {
        _checkTerms(terms);
        grantId = grantIdOf(terms.owner, salt);
        Grant storage g = grants[grantId];
        if (g.owner != address(0)) revert GrantExists(grantId);
        g.owner = terms.owner;
        g.notBefore = terms.notBefore;
        g.expiry = terms.expiry;
        g.operations = terms.operations;
        g.operator = terms.operator;
        g.maxUses = terms.maxUses;
        g.dataset = terms.dataset;
        g.statementDigest = terms.statementDigest;
        emit GrantCreated(grantId, terms.owner, terms.operator, terms, salt, msg.sender);
    }

    function _checkTerms(GrantTerms calldata terms) private view {
        if (terms.operator == address(0)) revert InvalidGrant("operator is the zero address");
        if (terms.dataset == bytes32(0)) revert InvalidGrant("dataset is zero");
        if (terms.operations == 0 || terms.operations > ALL_OPERATIONS) {
            revert InvalidGrant("operations must be a nonzero mask of read 1, insert 2, update 4, delete 8");
        }
        if (terms.statementDigest == bytes32(0)) revert InvalidGrant("statementDigest is zero");
        if (bytes(terms.purpose).length == 0) revert InvalidGrant("no purpose");
        if (terms.expiry <= terms.notBefore) revert InvalidGrant("expiry is not after notBefore");
        if (terms.expiry <= block.timestamp) revert InvalidGrant("expiry has passed");
        if (terms.maxUses == 0) revert InvalidGrant("maxUses is zero");
    }
}
