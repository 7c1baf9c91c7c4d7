"""Types shared by every layer: ids, errors, enums and entity schemas. No I/O."""
