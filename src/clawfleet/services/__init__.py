"""L4: use cases. Transactions, validation across resources, access checks and secret handling.

Services know the store and the wire schemas; they never touch runtimes, adapters or controllers.
"""
