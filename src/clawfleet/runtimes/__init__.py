"""L3: where Instances run. One small interface (``base.Runtime``), one module per backend."""
