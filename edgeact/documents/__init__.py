"""edgeact's JSON documents, typed: the profile-device report, the calibration record and the provenance written into
int8 models; the JSON Schema files under docs/schema/ are generated from these classes (:mod:`.schemas`)."""
