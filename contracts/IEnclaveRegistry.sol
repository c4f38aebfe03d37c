// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title The view of the enclave registry that other Cloister contracts rely on.
interface IEnclaveRegistry {
    /// @notice True when `enclave` is registered, not revoked and its registration has not expired.
    function isActive(address enclave) external view returns (bool);

    /// @notice The operator allowed to use `enclave`, or the zero address when it is not active.
    /// @dev One call that answers both "is it active" and "who runs it", so a market pays one external call.
    function activeOperator(address enclave) external view returns (address);

    /// @notice The operator and TEE type of `enclave`; the operator is the zero address when it is not active.
    /// @dev One call (one storage slot) for a market that matches on TEE type.
    function activeEnclave(address enclave) external view returns (address operator, uint8 teeType);

    /// @notice The operator registered for `enclave`, active or not (zero when never registered).
    function operatorOf(address enclave) external view returns (address);
}
