"""Hardware: device facts, read from the TOML profiles in ``edgeact/device_profiles``; code asks capabilities."""

from edgeact.hardware.profiles import ActivationVerdict, DeviceProfile, activation_verdict, load_profile

__all__ = ["ActivationVerdict", "DeviceProfile", "activation_verdict", "load_profile"]
