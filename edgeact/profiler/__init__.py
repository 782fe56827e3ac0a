"""`edgeact profile-device`: run an int8 model on a device's backend, compare with float32, explain the error."""
