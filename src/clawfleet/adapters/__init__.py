"""L3: what agent program runs and how to talk to it.

Each adapter has a pure render side (control plane) and a driver side (runner). The `command`
adapter drives any program through a small JSONL (or plain text) protocol.
"""
