"""L1: pure domain: ids, kinds, names, label selectors and resource records. No I/O."""
