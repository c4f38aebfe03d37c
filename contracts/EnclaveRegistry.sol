// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @title Registry of attested enclaves.
/// @notice The attestation service (ATTESTER_ROLE) verifies an enclave's evidence off chain and records
/// the result here: the enclave's signing address (its identity), the operator allowed to use it, its
/// HPKE key, TEE type, measurement and an expiry. Consumers check `isActive` before trusting a signature.
/// @dev Measurements longer than 32 bytes (TDX MRTD, SEV-SNP MEASUREMENT: 48 bytes) are stored as their
/// SHA-256; 32-byte measurements (SGX MRENCLAVE, a program's SHA-256) are stored as is.
contract EnclaveRegistry is AccessControl, IEnclaveRegistry {
    bytes32 public constant ATTESTER_ROLE = keccak256("ATTESTER_ROLE");

    uint8 public constant TEE_SGX = 0;
    uint8 public constant TEE_TDX = 1;
    uint8 public constant TEE_SEV_SNP = 2;

    /// @notice What the attester asserts about an enclave. `evidenceCid` is only emitted, never stored.
    struct Registration {
        address enclave;
        address operator;
        bytes32 hpkePublicKey;
        uint8 teeType;
        bool simulated;
        bytes32 measurement;
        uint64 expiry;
        string evidenceCid;
    }

    /// @dev Slot 0 packs operator, expiry, teeType, simulated and revoked (31 bytes).
    struct Enclave {
        address operator;
        uint64 expiry;
        uint8 teeType;
        bool simulated;
        bool revoked;
        bytes32 hpkePublicKey;
        bytes32 measurement;
    }

    mapping(address enclave => Enclave) public enclaves;

    error ZeroAddress();
    error InvalidTeeType(uint8 teeType);
    error ExpiryNotInFuture(uint64 expiry, uint256 blockTimestamp);
    error EnclaveAlreadyRevoked(address enclave);
    error EnclaveNotRegistered(address enclave);

    /// @param renewal True when the signer was already registered (its entry is replaced).
    event EnclaveRegistered(
        address indexed enclave,
        address indexed operator,
        uint8 teeType,
        bool simulated,
        bytes32 measurement,
        bytes32 hpkePublicKey,
        uint64 expiry,
        string evidenceCid,
        bool renewal
    );
    event EnclaveRevoked(address indexed enclave, address indexed attester);

    constructor(address admin, address attester) {
        if (admin == address(0) || attester == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ATTESTER_ROLE, attester);
    }

    /// @notice Registers an enclave, or renews the registration of a known signer.
    /// @dev A revoked signer stays revoked: its key is presumed compromised, so the enclave must generate
    /// a new key and be attested again.
    function register(Registration calldata r) external onlyRole(ATTESTER_ROLE) {
        if (r.enclave == address(0) || r.operator == address(0)) revert ZeroAddress();
        if (r.teeType > TEE_SEV_SNP) revert InvalidTeeType(r.teeType);
        if (r.expiry <= block.timestamp) revert ExpiryNotInFuture(r.expiry, block.timestamp);
        Enclave storage e = enclaves[r.enclave];
        if (e.revoked) revert EnclaveAlreadyRevoked(r.enclave);
        bool renewal = e.operator != address(0);

        e.operator = r.operator;
        e.expiry = r.expiry;
        e.teeType = r.teeType;
        e.simulated = r.simulated;
        e.hpkePublicKey = r.hpkePublicKey;
        e.measurement = r.measurement;

        emit EnclaveRegistered(
            r.enclave, r.operator, r.teeType, r.simulated, r.measurement, r.hpkePublicKey, r.expiry, r.evidenceCid, renewal
        );
    }

    /// @notice Revokes an enclave for good; it can no longer be used, nor re-registered.
    function revoke(address enclave) external onlyRole(ATTESTER_ROLE) {
        Enclave storage e = enclaves[enclave];
        if (e.operator == address(0)) revert EnclaveNotRegistered(enclave);
        if (e.revoked) revert EnclaveAlreadyRevoked(enclave);
        e.revoked = true;
        emit EnclaveRevoked(enclave, msg.sender);
    }

    /// @inheritdoc IEnclaveRegistry
    function isActive(address enclave) public view returns (bool) {
        Enclave storage e = enclaves[enclave];
        return e.operator != address(0) && !e.revoked && block.timestamp < e.expiry;
    }

    /// @inheritdoc IEnclaveRegistry
    function activeOperator(address enclave) external view returns (address) {
        return isActive(enclave) ? enclaves[enclave].operator : address(0);
    }

    /// @inheritdoc IEnclaveRegistry
    function activeEnclave(address enclave) external view returns (address operator, uint8 teeType) {
        Enclave storage e = enclaves[enclave];
        if (e.operator == address(0) || e.revoked || block.timestamp >= e.expiry) return (address(0), 0);
        return (e.operator, e.teeType);
    }

    /// @inheritdoc IEnclaveRegistry
    function operatorOf(address enclave) external view returns (address) {
        return enclaves[enclave].operator;
    }
}
